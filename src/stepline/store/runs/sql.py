"""The SQL of runs (`stepline.store.runs`): creating, claiming, leasing, finishing, reading.

Statements are built once, at import, with bind parameters; that of the hot path (lease
renewal) is also `Prepared`: compiled once per dialect and executed straight on the
driver's cursor. The same statements serve SQLite and PostgreSQL:
`FOR UPDATE [SKIP LOCKED]` is dropped by SQLAlchemy's SQLite compiler, where the store's
single writer and `BEGIN IMMEDIATE` already serialize writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    RunStatus,
    StepStatus,
)
from stepline.store.paging import Ordering
from stepline.store.prepared import Prepared
from stepline.store.tables import runs, steps, workflow_versions
from stepline.store.types import UTCDateTime


def _param(name: str, column: sa.Column[object]) -> sa.BindParameter[object]:
    """A named bind parameter that converts its value as `column` does (JSON, UTC...)."""
    return sa.bindparam(name, type_=column.type)


_NOW = sa.bindparam("now", type_=UTCDateTime())

# --- a run's life (`runs.lifecycle`) ---------------------------------------------------------

NEXT_RUN_NUMBER = sa.select(sa.func.coalesce(sa.func.max(runs.c.run_number), 0) + 1).where(
    runs.c.workflow_id == sa.bindparam("workflow_id")
)
INSERT_RUN = runs.insert()
GET_RUN = sa.select(runs).where(runs.c.id == sa.bindparam("run_id"))
GET_RUN_IN_ORGANIZATION = GET_RUN.where(runs.c.organization_id == sa.bindparam("organization_id"))


def _running_of_workflow(run: sa.Table) -> sa.ScalarSelect[int]:
    """How many runs of `run`'s workflow are running under a live lease (a correlated
    count, evaluated only for runs of a workflow with a concurrency limit)."""
    others = runs.alias("others")
    return (
        sa.select(sa.func.count())
        .select_from(others)
        .where(
            others.c.workflow_id == run.c.workflow_id,
            others.c.status == RunStatus.running.value,
            others.c.lease_expires_at >= _NOW,
        )
        .scalar_subquery()
    )


# After a claim of a run with a limit (PostgreSQL), counted again under the workflow's lock.
RUNNING_OF_WORKFLOW = sa.select(sa.func.count()).where(
    runs.c.workflow_id == sa.bindparam("workflow_id"),
    runs.c.status == RunStatus.running.value,
    runs.c.lease_expires_at >= _NOW,
)
WORKFLOW_CLAIM_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


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
        # A run named (a child its parent's worker drives) is claimed whatever the limit:
        # its parent holds a slot already, and waiting on it could deadlock.
        candidate = candidate.where(runs.c.id == sa.bindparam("run_id"))
    else:
        candidate = candidate.where(
            sa.or_(
                runs.c.concurrency_limit.is_(None),
                _running_of_workflow(runs) < runs.c.concurrency_limit,
            )
        )
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
        .returning(
            runs.c.id,
            runs.c.organization_id,
            runs.c.parent_run_id,
            runs.c.workflow_id,
            runs.c.concurrency_limit,
        )
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


# --- listings (`runs.listings`) ----------------------------------------------------------

ORDER = Ordering("runs", (runs.c.created_at, runs.c.id), ("datetime", "uuid"), True)
"""Newest first."""
BY_IDEMPOTENCY_KEY = sa.select(runs.c.id).where(
    runs.c.organization_id == sa.bindparam("organization_id"),
    runs.c.idempotency_key == sa.bindparam("key"),
)


def of_workflow(
    organization_id: UUID,
    workflow_id: UUID,
    *,
    workspace_id: UUID | None = None,
    statuses: Sequence[RunStatus] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[sa.ColumnElement[bool]]:
    """Which runs of the workflow a listing reads: of a workspace, in some statuses,
    created in [created_from, created_to), each when given."""
    where = [runs.c.organization_id == organization_id, runs.c.workflow_id == workflow_id]
    if workspace_id is not None:
        where.append(runs.c.workspace_id == workspace_id)
    if statuses:
        where.append(runs.c.status.in_([RunStatus(s).value for s in statuses]))
    if created_from is not None:
        where.append(runs.c.created_at >= created_from)
    if created_to is not None:
        where.append(runs.c.created_at < created_to)
    return where


def page(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """The base of a page of runs (`ORDER` orders and bounds it)."""
    return sa.select(runs).where(*where)


def window(where: Sequence[sa.ColumnElement[bool]], offset: int, limit: int) -> sa.Select[Any]:
    """The runs newest first from `offset`, at most `limit`."""
    return (
        sa.select(runs)
        .where(*where)
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .offset(offset)
        .limit(limit)
    )


def count(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(runs).where(*where)


def by_status(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """Per status: how many runs, their tokens and their cost."""
    return (
        sa.select(
            runs.c.status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(runs.c.total_tokens), 0),
            sa.func.coalesce(sa.func.sum(runs.c.total_cost), 0.0),
        )
        .where(*where)
        .group_by(runs.c.status)
    )


def timed(where: Sequence[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
    """The finished runs with a duration."""
    finished = [s.value for s in FINISHED_RUN_STATUSES]
    return sa.and_(*where, runs.c.status.in_(finished), runs.c.duration_ms.is_not(None))


def duration_at(timed: sa.ColumnElement[bool], rank: int) -> sa.Select[Any]:
    """The duration of rank `rank` (0-based) of the timed runs, shortest first."""
    return (
        sa.select(runs.c.duration_ms)
        .where(timed)
        .order_by(runs.c.duration_ms)
        .limit(1)
        .offset(rank)
    )


# --- cancel (`runs.cancel`) ---------------------------------------------------------------

_FINISHED = [s.value for s in FINISHED_RUN_STATUSES]
_UNFINISHED = [s.value for s in RunStatus if s not in FINISHED_RUN_STATUSES]
_UNFINISHED_STEPS = [s.value for s in StepStatus if s not in FINISHED_STEP_STATUSES]

CANCEL_REQUESTED_AT = sa.select(runs.c.cancel_requested_at).where(
    runs.c.id == sa.bindparam("run_id")
)


def cancel_state(organization_id: UUID, run_id: UUID, *, wait: bool) -> sa.Select[Any]:
    """What a cancel decides by, the run's row locked: waiting for the lock if `wait`,
    else skipping a row another transaction holds (PostgreSQL)."""
    return (
        sa.select(
            runs.c.status, runs.c.lease_expires_at, runs.c.started_at, runs.c.cancel_requested_at
        )
        .where(runs.c.id == run_id, runs.c.organization_id == organization_id)
        .with_for_update(skip_locked=not wait)
    )


def set_run(run_id: UUID, values: dict[str, Any]) -> sa.Update:
    return runs.update().where(runs.c.id == run_id).values(**values)


def unfinished_children(run_id: UUID) -> sa.Select[Any]:
    """The ids of the run's unfinished child runs (lock them with `.with_for_update`)."""
    return sa.select(runs.c.id).where(
        runs.c.parent_run_id == run_id, runs.c.status.not_in(_FINISHED)
    )


def unfinished(run_id: UUID) -> sa.Select[Any]:
    return sa.select(runs.c.id).where(runs.c.id == run_id, runs.c.status.not_in(_FINISHED))


def orphans(limit: int) -> sa.Select[Any]:
    """Unfinished runs whose parent run was cancelled (id, organization), by id."""
    parents = runs.alias("parents")
    return (
        sa.select(runs.c.id, runs.c.organization_id)
        .join(parents, parents.c.id == runs.c.parent_run_id)
        .where(
            # IN, not NOT IN: the status index finds the few unfinished runs.
            runs.c.status.in_(_UNFINISHED),
            runs.c.parent_run_id.is_not(None),
            parents.c.status == RunStatus.cancelled.value,
        )
        .order_by(runs.c.id)
        .limit(limit)
    )


def _unfinished_steps(run_id: UUID) -> sa.ColumnElement[bool]:
    return sa.and_(steps.c.run_id == run_id, steps.c.status.in_(_UNFINISHED_STEPS))


def unfinished_steps(run_id: UUID) -> sa.Select[Any]:
    return sa.select(steps).where(_unfinished_steps(run_id))


def cancel_steps(run_id: UUID, now: datetime, reason: str) -> sa.Update:
    """Mark the run's unfinished steps cancelled (completed now if they had started)."""
    return (
        steps.update()
        .where(_unfinished_steps(run_id))
        .values(
            status=StepStatus.cancelled.value,
            status_reason=reason,
            completed_at=sa.case(
                (steps.c.started_at.is_not(None), sa.literal(now, type_=steps.c.completed_at.type)),
                else_=None,
            ),
            updated_at=now,
        )
    )


# --- control (`runs.control`) -------------------------------------------------------------

REVIEWS_ORDER = Ordering("reviews", (steps.c.updated_at, steps.c.id), ("datetime", "uuid"))
"""Oldest first."""


def locked(run_id: UUID, organization_id: UUID | None) -> sa.Select[Any]:
    """The run (of the organization, when given), its row locked (PostgreSQL)."""
    query = sa.select(runs).where(runs.c.id == run_id)
    if organization_id is not None:
        query = query.where(runs.c.organization_id == organization_id)
    return query.with_for_update()


def set_run_returning(run_id: UUID, values: dict[str, Any]) -> sa.Update:
    return runs.update().where(runs.c.id == run_id).values(**values).returning(*runs.c)


def decided_review(run_id: UUID) -> sa.Select[Any]:
    """A step of the run paused for a review that was decided since."""
    return (
        sa.select(steps.c.id)
        .where(
            steps.c.run_id == run_id,
            steps.c.status == StepStatus.waiting_for_human.value,
            steps.c.requires_human_review.is_(True),
            steps.c.human_review_approved.is_not(None),
        )
        .limit(1)
    )


def finished_child(run_id: UUID) -> sa.Select[Any]:
    """A finished child run of a step of the run that waits for it."""
    return (
        sa.select(runs.c.id)
        .where(
            runs.c.parent_run_id == run_id,
            runs.c.status.in_(_FINISHED),
            runs.c.parent_step_id.in_(
                sa.select(steps.c.id).where(
                    steps.c.run_id == run_id,
                    steps.c.status == StepStatus.waiting_for_human.value,
                )
            ),
        )
        .limit(1)
    )


def child_of_step(parent_step_id: UUID) -> sa.Select[Any]:
    return (
        sa.select(runs)
        .where(runs.c.parent_step_id == parent_step_id)
        .order_by(runs.c.created_at)
        .limit(1)
    )


def steps_in(
    run_id: UUID, statuses: Sequence[StepStatus], *, negate: bool = False
) -> sa.Select[Any]:
    """The run's steps in (or, `negate`, not in) the statuses."""
    values = [StepStatus(s).value for s in statuses]
    status = steps.c.status.not_in(values) if negate else steps.c.status.in_(values)
    return sa.select(steps).where(steps.c.run_id == run_id, status)


def step_of(run_id: UUID, key: UUID | str) -> sa.Select[Any]:
    """The run's step by its record's UUID or its step_id."""
    where = steps.c.id == key if isinstance(key, UUID) else steps.c.step_id == key
    return sa.select(steps).where(steps.c.run_id == run_id, where)


def pending_reviews(
    organization_id: UUID, workflow_id: UUID | None, workspace_id: UUID | None
) -> sa.Select[Any]:
    """Steps waiting for a person's decision (`REVIEWS_ORDER` orders and bounds them)."""
    query = sa.select(steps).where(
        steps.c.organization_id == organization_id,
        steps.c.status == StepStatus.waiting_for_human.value,
        steps.c.requires_human_review.is_(True),
        steps.c.human_review_approved.is_(None),
    )
    if workflow_id is not None:
        query = query.where(steps.c.workflow_id == workflow_id)
    if workspace_id is not None:
        in_workspace = sa.select(runs.c.id).where(runs.c.workspace_id == workspace_id)
        query = query.where(steps.c.run_id.in_(in_workspace))
    return query


def definition(workflow_id: UUID, version: int) -> sa.Select[Any]:
    return sa.select(workflow_versions.c.definition).where(
        workflow_versions.c.workflow_id == workflow_id,
        workflow_versions.c.version == version,
    )
