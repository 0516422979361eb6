"""The SQL of runs (`stepline.store.runs`): creating, claiming, leasing, finishing, reading.

Statements are built once, at import, with bind parameters; that of the hot path (lease
renewal) is also `Prepared`: compiled once per dialect and executed straight on the
driver's cursor. The same statements serve SQLite and PostgreSQL:
`FOR UPDATE [SKIP LOCKED]` is dropped by SQLAlchemy's SQLite compiler, where the store's
single writer and `BEGIN IMMEDIATE` already serialize writes.
"""

from __future__ import annotations

import sqlalchemy as sa

from stepline.records import RunStatus
from stepline.store.prepared import Prepared
from stepline.store.tables import runs
from stepline.store.types import UTCDateTime


def _param(name: str, column: sa.Column[object]) -> sa.BindParameter[object]:
    """A named bind parameter that converts its value as `column` does (JSON, UTC...)."""
    return sa.bindparam(name, type_=column.type)


_NOW = sa.bindparam("now", type_=UTCDateTime())

NEXT_RUN_NUMBER = sa.select(sa.func.coalesce(sa.func.max(runs.c.run_number), 0) + 1).where(
    runs.c.workflow_id == sa.bindparam("workflow_id")
)
INSERT_RUN = runs.insert()
GET_RUN = sa.select(runs).where(runs.c.id == sa.bindparam("run_id"))
GET_RUN_IN_ORGANIZATION = GET_RUN.where(runs.c.organization_id == sa.bindparam("organization_id"))


def _claim(*, one_run: bool) -> sa.Update:
    """Take the oldest claimable run: queued, or running under an expired lease (orphaned).

    PostgreSQL locks the chosen row with SKIP LOCKED, so concurrent claimers pass over
    each other's picks instead of waiting; when the lock is taken the row's status is
    checked again, so a run that a concurrent transaction just claimed is not taken twice.
    Returns the run's id (and what failing it needs): its record is read apart, so that a
    record that cannot be loaded fails its run instead of the claim.
    """
    claimable = sa.or_(
        runs.c.status == RunStatus.queued.value,
        sa.and_(runs.c.status == RunStatus.running.value, runs.c.lease_expires_at < _NOW),
    )
    candidate = sa.select(runs.c.id).where(claimable)
    if one_run:
        candidate = candidate.where(runs.c.id == sa.bindparam("run_id"))
    candidate = (
        candidate.order_by(runs.c.created_at, runs.c.id).limit(1).with_for_update(skip_locked=True)
    )
    return (
        runs.update()
        .where(runs.c.id == candidate.scalar_subquery())
        .values(
            status=RunStatus.running.value,
            lease_owner=sa.bindparam("worker_id"),
            lease_expires_at=_param("lease_until", runs.c.lease_expires_at),
            attempt=runs.c.attempt + 1,
            started_at=sa.func.coalesce(runs.c.started_at, _NOW),
            updated_at=_NOW,
        )
        .returning(runs.c.id, runs.c.organization_id, runs.c.parent_run_id)
    )


CLAIM_NEXT_RUN = _claim(one_run=False)
CLAIM_RUN = _claim(one_run=True)

# A claimed run whose record cannot be loaded fails (`runs.claim`).
FAIL_UNLOADABLE_RUN = (
    runs.update()
    .where(runs.c.id == sa.bindparam("run_id"))
    .values(
        status=RunStatus.failed.value,
        error=sa.bindparam("new_error"),
        error_details=_param("new_error_details", runs.c.error_details),
        completed_at=_NOW,
        duration_ms=0,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=_NOW,
    )
)

RENEW_LEASE = Prepared(
    runs.update()
    .where(runs.c.id == sa.bindparam("run_id"), runs.c.lease_owner == sa.bindparam("worker_id"))
    .values(lease_expires_at=_param("lease_until", runs.c.lease_expires_at), updated_at=_NOW)
)

# `runs.finish` reads the lease and start time first (locking the row on PostgreSQL).
RUN_LEASE_FOR_UPDATE = (
    sa.select(runs.c.lease_owner, runs.c.started_at)
    .where(runs.c.id == sa.bindparam("run_id"))
    .with_for_update()
)
FINISH_RUN = (
    runs.update()
    .where(runs.c.id == sa.bindparam("run_id"))
    .values(
        status=sa.bindparam("new_status"),
        output=_param("new_output", runs.c.output),
        error=sa.bindparam("new_error"),
        error_details=_param("new_error_details", runs.c.error_details),
        # Totals left as None keep what an earlier attempt recorded.
        total_tokens=sa.func.coalesce(
            _param("new_total_tokens", runs.c.total_tokens), runs.c.total_tokens
        ),
        total_cost=sa.func.coalesce(_param("new_total_cost", runs.c.total_cost), runs.c.total_cost),
        completed_at=_param("new_completed_at", runs.c.completed_at),
        duration_ms=_param("new_duration_ms", runs.c.duration_ms),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=_NOW,
    )
    .returning(*runs.c)
)


def list_runs(
    *, organization_id: bool, workflow_id: bool, status: bool
) -> sa.Select[tuple[object, ...]]:
    """Runs newest first, filtered by the named parameters that are set."""
    query = sa.select(runs)
    if organization_id:
        query = query.where(runs.c.organization_id == sa.bindparam("organization_id"))
    if workflow_id:
        query = query.where(runs.c.workflow_id == sa.bindparam("workflow_id"))
    if status:
        query = query.where(runs.c.status == sa.bindparam("status"))
    return query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(sa.bindparam("limit"))


# The ids between two bounds: the runs whose id starts with a prefix (`runs.ids_between`).
RUN_IDS_BETWEEN = (
    sa.select(runs.c.id)
    .where(runs.c.id.between(_param("low", runs.c.id), _param("high", runs.c.id)))
    .order_by(runs.c.id)
    .limit(sa.bindparam("limit"))
)


# --- steps ---------------------------------------------------------------------------------
