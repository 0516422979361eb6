"""Each chunk keeps how many words (tokens) its text has, for BM25 on PostgreSQL: a
chunk's length and the collection's average length are BM25's length normalization,
which PostgreSQL's tsvector (stop words dropped, each lexeme counted once) cannot give.
Existing chunks are counted here on PostgreSQL (runs of letters and digits, as SQLite's
unicode61 tokenizer splits words); SQLite ranks with FTS5's own counts and keeps NULL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rebuild on either database.
    op.add_column("chunks", sa.Column("token_count", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE chunks SET token_count = "
            "(SELECT count(*) FROM regexp_matches(text, '[[:alnum:]]+', 'g'))"
        )


def downgrade() -> None:
    # Not a batch (a table rebuild): SQLite (3.35+) drops a column in place.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("ALTER TABLE chunks DROP COLUMN token_count")
    else:
        op.drop_column("chunks", "token_count")
