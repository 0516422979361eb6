"""A collection keeps the provider its chunks are embedded by, beside the model, so that a
hybrid search embeds its query with the same provider (or says it cannot). Collections
made before keep NULL: their provider was never recorded.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rebuild on either database.
    op.add_column("collections", sa.Column("embedding_provider", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not a batch (a table rebuild): chunks refer to collections, and SQLite (3.35+) drops a
    # column in place.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("ALTER TABLE collections DROP COLUMN embedding_provider")
    else:
        op.drop_column("collections", "embedding_provider")
