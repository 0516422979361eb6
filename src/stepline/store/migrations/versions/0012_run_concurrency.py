"""Per-workflow concurrency: each run carries its pinned version's `concurrency` limit,
which a claim checks against the workflow's runs running under a live lease (indexed by
workflow and status).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rebuild on either database.
    op.add_column("runs", sa.Column("concurrency_limit", sa.Integer(), nullable=True))
    op.create_index("ix_runs_workflow_id_status", "runs", ["workflow_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_runs_workflow_id_status", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("concurrency_limit")
