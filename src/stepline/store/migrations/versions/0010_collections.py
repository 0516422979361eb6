"""Knowledge collections and their chunks, with each database's full-text index over the
chunks' text: SQLite an FTS5 table (`chunks_fts`, porter stemming, its rowid kept in
`chunks.fts_rowid`), PostgreSQL a generated tsvector column with a GIN index. A chunk's
embedding (for hybrid ranking) is kept as bytes beside it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> Any:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("embedding_model", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("deleted_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_collections_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
    )
    op.create_index(
        "ix_collections_organization_id_created_at_id",
        "collections",
        ["organization_id", "created_at", "id"],
    )
    op.create_index(
        "ix_collections_organization_id_name_live",
        "collections",
        ["organization_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("collection_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("fts_rowid", sa.BigInteger(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_chunks_collection_id_collections"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_chunks_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chunks"),
    )
    op.create_index(
        "ix_chunks_collection_id_source_id_position",
        "chunks",
        ["collection_id", "source_id", "position"],
    )
    op.create_index("ix_chunks_fts_rowid", "chunks", ["fts_rowid"])
    if op.get_bind().dialect.name == "sqlite":
        # `collection_key` is indexed so a search matches within one collection; its
        # bm25 weight is 0, so it never ranks.
        op.execute(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5("
            "text, collection_key, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            "ALTER TABLE chunks ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX ix_chunks_search_vector ON chunks USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE chunks_fts")
    else:
        op.execute("DROP INDEX ix_chunks_search_vector")
    op.drop_index("ix_chunks_fts_rowid", table_name="chunks")
    op.drop_index("ix_chunks_collection_id_source_id_position", table_name="chunks")
    op.drop_table("chunks")
    op.drop_index("ix_collections_organization_id_name_live", table_name="collections")
    op.drop_index("ix_collections_organization_id_created_at_id", table_name="collections")
    op.drop_table("collections")
