"""The SQL of the worker registry (`stepline.store.workers`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.records import RunStatus
from stepline.store.tables import runs, workers

# Parameters named apart from the columns: an UPDATE or DELETE reserves the columns' names.
_ONE = workers.c.id == sa.bindparam("worker_id")
FORGET_SILENT = workers.delete().where(workers.c.heartbeat_at < sa.bindparam("silent_since"))
DELETE = workers.delete().where(_ONE)
INSERT = workers.insert()
BEAT = (
    workers.update()
    .where(_ONE)
    .values(heartbeat_at=sa.bindparam("now", type_=workers.c.heartbeat_at.type))
)
LIVE = (
    sa.select(workers)
    .where(workers.c.heartbeat_at >= sa.bindparam("since"))
    .order_by(workers.c.started_at, workers.c.id)
)
# The running runs of an organization that some workers hold a lease on.
HELD = (
    sa.select(runs.c.lease_owner, runs.c.id)
    .where(
        runs.c.lease_owner.in_(sa.bindparam("worker_ids", expanding=True)),
        runs.c.organization_id == sa.bindparam("organization_id"),
        runs.c.status == RunStatus.running.value,
    )
    .order_by(runs.c.created_at, runs.c.id)
)
