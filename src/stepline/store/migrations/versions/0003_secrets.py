"""Secrets: an organization's (or workspace's) encrypted values, unique by name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> Any:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_secrets_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
    )
    # Two partial indexes: a NULL workspace id never collides in a unique index.
    op.create_index(
        "ix_secrets_organization_id_name",
        "secrets",
        ["organization_id", "name"],
        unique=True,
        sqlite_where=sa.text("workspace_id IS NULL"),
        postgresql_where=sa.text("workspace_id IS NULL"),
    )
    op.create_index(
        "ix_secrets_organization_id_workspace_id_name",
        "secrets",
        ["organization_id", "workspace_id", "name"],
        unique=True,
        sqlite_where=sa.text("workspace_id IS NOT NULL"),
        postgresql_where=sa.text("workspace_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_secrets_organization_id_workspace_id_name", table_name="secrets")
    op.drop_index("ix_secrets_organization_id_name", table_name="secrets")
    op.drop_table("secrets")
