"""The worker fleet: a registry of live workers (name, host, pid, concurrency, heartbeat),
and on PostgreSQL a NOTIFY on `stepline_runs` whenever a run becomes claimable (queued),
on which idle workers wake instead of polling.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION stepline_notify_queued() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('stepline_runs', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER runs_notify_queued AFTER INSERT OR UPDATE OF status ON runs
FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION stepline_notify_queued()
"""


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])
    op.create_index("ix_runs_lease_owner", "runs", ["lease_owner"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS runs_notify_queued ON runs")
        op.execute("DROP FUNCTION IF EXISTS stepline_notify_queued()")
    op.drop_index("ix_runs_lease_owner", table_name="runs")
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
