"""The first schema: organizations, workflows and their versions, runs, steps.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The types as they were at this revision (later changes to stepline.store.types must not
# rewrite history): naive UTC text on SQLite, timestamptz and JSONB on PostgreSQL.
def _time() -> Any:
    return sa.DateTime(timezone=True)


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
    )
    op.create_index("ix_organizations_name", "organizations", ["name"], unique=True)

    op.create_table(
        "workflows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("deleted_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_workflows_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
    )
    op.create_index("ix_workflows_organization_id_name", "workflows", ["organization_id", "name"])

    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name="fk_workflow_versions_workflow_id_workflows",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_versions"),
    )
    op.create_index(
        "ix_workflow_versions_workflow_id_version",
        "workflow_versions",
        ["workflow_id", "version"],
        unique=True,
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("inputs", _json(), nullable=False),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_details", _json(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", _time(), nullable=True),
        sa.Column("parent_run_id", sa.Uuid(), nullable=True),
        sa.Column("parent_step_id", sa.Uuid(), nullable=True),
        sa.Column("replay_of", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("total_tokens", sa.BigInteger(), nullable=True),
        sa.Column("total_cost", sa.Float(), nullable=True),
        sa.Column("cancel_requested_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name="fk_runs_workflow_id_workflows"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_status_lease_expires_at", "runs", ["status", "lease_expires_at"])
    op.create_index("ix_runs_workflow_id_created_at", "runs", ["workflow_id", "created_at"])
    op.create_index("ix_runs_organization_id_created_at", "runs", ["organization_id", "created_at"])
    op.create_index(
        "ix_runs_organization_id_idempotency_key", "runs", ["organization_id", "idempotency_key"]
    )
    op.create_index(
        "ix_runs_workflow_id_run_number", "runs", ["workflow_id", "run_number"], unique=True
    )

    op.create_table(
        "steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("step_id", sa.Text(), nullable=False),
        sa.Column("node_type", sa.Text(), nullable=False),
        sa.Column("node_label", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("inputs", _json(), nullable=True),
        sa.Column("outputs", _json(), nullable=True),
        sa.Column("handle_inputs", _json(), nullable=True),
        sa.Column("handle_outputs", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_stage", sa.String(32), nullable=True),
        sa.Column("error_category", sa.String(32), nullable=True),
        sa.Column("error_details", _json(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("tokens", _json(), nullable=True),
        sa.Column("cost", _json(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("attempts", _json(), nullable=False),
        sa.Column("loop_id", sa.Text(), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("iteration_context", _json(), nullable=True),
        sa.Column("requires_human_review", sa.Boolean(), nullable=True),
        sa.Column("human_reviewed_at", _time(), nullable=True),
        sa.Column("human_review_approved", sa.Boolean(), nullable=True),
        sa.Column("human_reviewer", sa.Text(), nullable=True),
        sa.Column("trace_spans", _json(), nullable=True),
        sa.Column("step_metadata", _json(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_steps_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_steps"),
    )
    op.create_index("ix_steps_run_id_step_id", "steps", ["run_id", "step_id"], unique=True)
    op.create_index("ix_steps_run_id_seq_step_id", "steps", ["run_id", "seq", "step_id"])
    op.create_index("ix_steps_run_id_node_id", "steps", ["run_id", "node_id"])
    op.create_index("ix_steps_run_id_status", "steps", ["run_id", "status"])


def downgrade() -> None:
    op.drop_table("steps")
    op.drop_table("runs")
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
    op.drop_table("organizations")
