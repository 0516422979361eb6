"""Files: an organization's named contents (the bytes are in the file storage, by sha256);
and the documents a step read, made or split into (Retab's `input_document`,
`output_document`, `split_documents`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from stepline.store.types import json_type

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEP_DOCUMENT_COLUMNS = ("input_document", "output_document", "split_documents")


def _time() -> Any:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("deleted_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_files_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    op.create_index(
        "ix_files_organization_id_created_at_id", "files", ["organization_id", "created_at", "id"]
    )
    op.create_index("ix_files_sha256", "files", ["sha256"])
    # Plain ADD COLUMN (nullable, no default): no table rebuild on either database.
    for name in STEP_DOCUMENT_COLUMNS:
        op.add_column("steps", sa.Column(name, json_type(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        for name in STEP_DOCUMENT_COLUMNS:
            batch.drop_column(name)
    op.drop_index("ix_files_sha256", table_name="files")
    op.drop_index("ix_files_organization_id_created_at_id", table_name="files")
    op.drop_table("files")
