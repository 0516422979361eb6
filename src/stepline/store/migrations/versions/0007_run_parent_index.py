"""An index on runs' parent: cancelling a run finds its children, and a resumed step its
child run, without reading every run of the database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_parent_run_id_parent_step_id", "runs", ["parent_run_id", "parent_step_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_runs_parent_run_id_parent_step_id", table_name="runs")
