"""Cancelling a run, and with it, depth first, its unfinished child runs (sub_workflow).

A run nobody executes (queued, waiting for a human, or running under an expired lease) is
cancelled at once, with its unfinished steps; a run a worker holds only gets
`cancel_requested_at`, and that worker stops it (it polls, `cancel_requested_at`).

Locks (PostgreSQL): a child that finishes locks its row, then its parent's (to wake it).
A cancel holds the parent's row, so waiting there for a child's lock could deadlock: it
takes the children it can lock now (SKIP LOCKED) and notes the others. Once that commits,
`request_cancel` tries the noted children again, each in a transaction that holds no
other run (so nothing can deadlock), until every one is cancelled or finished. A child is
locked only by a short store transaction (its claim, a lease renewal, a review...), so it
is free moments later. The retries skip a locked row too rather than wait for it: the
store writes through one connection, and a wait there would stall every write of the
process. Should a child stay locked past the retries' bound, every worker pool's sweep
(`cancel_children_of_cancelled`) cancels it once it is free, as would cancelling the
parent again (a cancelled parent's unfinished children are looked at anew).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import (
    FINISHED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    StepStatus,
    utcnow,
)
from stepline.store import events_sql, mapping
from stepline.store.errors import RunNotFoundError
from stepline.store.events import insert_run_event, step_event_params
from stepline.store.repository import Repository
from stepline.store.runs import sql
from stepline.store.steps import step_counts

log = logging.getLogger(__name__)

RUN_CANCELLED = "run cancelled"
"""The status_reason of the steps a cancel stopped."""
RETRY_LOCKED_FOR_S = 10.0
"""How long `request_cancel` keeps trying the child runs that were locked."""
_FIRST_RETRY_S = 0.01
_MAX_RETRY_DELAY_S = 0.25


class RunCancels(Repository):
    """Asking a run to stop; reading whether it was asked."""

    async def cancel_requested_at(self, run_id: UUID) -> datetime | None:
        """When a cancel of the run was requested (None: never); the worker polls this."""
        params = {"run_id": run_id}
        return await self._read(lambda conn: conn.execute(sql.CANCEL_REQUESTED_AT, params).scalar())

    async def request_cancel(
        self, organization_id: UUID, run_id: UUID, *, retry_locked_for_s: float = RETRY_LOCKED_FOR_S
    ) -> RunRecord:
        """Ask for the run to stop; idempotent. Raises RunNotFoundError.

        A run nobody executes is cancelled here and now, with its unfinished steps; a run a
        worker holds only gets `cancel_requested_at`. A finished run is returned unchanged.
        Its unfinished child runs are cancelled too: those another transaction holds locked
        once it lets go (tried for up to `retry_locked_for_s`).
        """

        def op(conn: sa.Connection) -> tuple[RunRecord, list[UUID]]:
            locked: list[UUID] = []
            if not _cancel(conn, organization_id, run_id, locked, wait=True):
                raise RunNotFoundError(f"run {run_id} not found")
            return _read_run(conn, run_id), locked

        run, locked = await self._write(op)
        if locked:
            await self._cancel_locked(organization_id, run_id, locked, retry_locked_for_s)
        return run

    async def cancel_children_of_cancelled(self, *, limit: int = 100) -> int:
        """Cancel unfinished runs whose parent run was cancelled; how many were.

        A cancel reaches every child it can lock within its retries; one held longer is
        left to this sweep, which every worker pool runs now and then. A child still held
        is skipped (no wait), and found again by the next sweep.
        """
        orphaned = sql.orphans(limit)
        found = await self._read(lambda conn: conn.execute(orphaned).all())
        cancelled = 0
        for run_id, organization_id in found:
            cancelled += await self._write(partial(_sweep_one, organization_id, run_id))
        return cancelled

    async def _cancel_locked(
        self, organization_id: UUID, run_id: UUID, locked: list[UUID], retry_for_s: float
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for_s
        delay = _FIRST_RETRY_S
        while locked:
            if loop.time() + delay > deadline:
                log.warning(
                    "cancel of run %s: child runs %s were still locked after %.1f s; "
                    "the worker pools' sweep cancels them once they are free",
                    run_id,
                    ", ".join(map(str, locked)),
                    retry_for_s,
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY_S)
            locked = await self._write(partial(_cancel_free, organization_id, locked))


def _cancel(
    conn: sa.Connection, organization_id: UUID, run_id: UUID, locked: list[UUID], *, wait: bool
) -> bool:
    """Ask one run to stop (stopping it now if no worker executes it), then its children.

    Waits for the run's row lock if `wait`, else skips a row another transaction holds.
    False if the run was not found so; the descendants held by others go to `locked`.
    """
    # The row lock orders this against a worker's claim of the run (PostgreSQL).
    query = sql.cancel_state(organization_id, run_id, wait=wait)
    row = conn.execute(query).mappings().first()
    if row is None:
        return False
    status = RunStatus(row["status"])
    if status not in FINISHED_RUN_STATUSES:
        _request(conn, organization_id, run_id, row)
    # A run cancelled before may have left a child that was locked then: look again.
    if status not in FINISHED_RUN_STATUSES or row["cancel_requested_at"] is not None:
        _cancel_children(conn, organization_id, run_id, locked)
    return True


def _request(conn: sa.Connection, organization_id: UUID, run_id: UUID, row: sa.RowMapping) -> None:
    """Record the request on an unfinished run; cancel it now if no worker executes it."""
    status = RunStatus(row["status"])
    now = utcnow()
    values: dict[str, Any] = {
        "cancel_requested_at": row["cancel_requested_at"] or now,
        "updated_at": now,
    }
    unattended = status in (RunStatus.queued, RunStatus.waiting_for_human) or (
        status is RunStatus.running
        and (row["lease_expires_at"] is None or row["lease_expires_at"] < now)
    )
    if unattended:
        _cancel_steps(conn, run_id, now)
        started_at = row["started_at"]
        values |= {
            "status": RunStatus.cancelled.value,
            "completed_at": now,
            "duration_ms": None
            if started_at is None
            else int((now - started_at).total_seconds() * 1000),
            "lease_owner": None,
            "lease_expires_at": None,
        }
    conn.execute(sql.set_run(run_id, values))
    if unattended:
        insert_run_event(
            conn,
            run_id,
            organization_id,
            RunStatus.cancelled,
            error=None,
            duration_ms=values["duration_ms"],
        )


def _cancel_children(
    conn: sa.Connection, organization_id: UUID, run_id: UUID, locked: list[UUID]
) -> None:
    """Cancel the run's unfinished children that no other transaction holds; note the rest."""
    unfinished = sql.unfinished_children(run_id)
    children = list(conn.execute(unfinished).scalars())
    if not children:
        return
    # SKIP LOCKED: never wait for a child while holding its parent (see the module's doc).
    free = set(conn.execute(unfinished.with_for_update(skip_locked=True)).scalars())
    for child_id in children:
        if child_id in free:
            _cancel(conn, organization_id, child_id, locked, wait=True)  # locked by us now
        else:
            locked.append(child_id)


def _cancel_free(organization_id: UUID, run_ids: list[UUID], conn: sa.Connection) -> list[UUID]:
    """Cancel each run that no other transaction holds now; the ids still to do."""
    locked: list[UUID] = []
    for run_id in run_ids:
        if not _cancel(conn, organization_id, run_id, locked, wait=False) and _unfinished(
            conn, run_id
        ):
            locked.append(run_id)
    return locked


def _unfinished(conn: sa.Connection, run_id: UUID) -> bool:
    return conn.execute(sql.unfinished(run_id)).first() is not None


def _cancel_steps(conn: sa.Connection, run_id: UUID, now: datetime) -> None:
    """Mark the run's unfinished steps cancelled, each with its step.cancelled event."""
    rows = conn.execute(sql.unfinished_steps(run_id)).mappings().all()
    if not rows:
        return
    conn.execute(sql.cancel_steps(run_id, now, RUN_CANCELLED))
    events = []
    for row in rows:
        step = mapping.row_to_step(row)
        step.status = StepStatus.cancelled
        step.status_reason = RUN_CANCELLED
        step.completed_at = now if step.started_at is not None else None
        step.updated_at = now
        events.append(step_event_params(step))
    events_sql.INSERT.executemany(conn, events)


def _read_run(conn: sa.Connection, run_id: UUID) -> RunRecord:
    row = conn.execute(sql.GET_RUN, {"run_id": run_id}).mappings().one()
    counts = step_counts(conn, run_id)
    return mapping.row_to_run(row, counts)


def _sweep_one(organization_id: UUID, run_id: UUID, conn: sa.Connection) -> bool:
    """Cancel the run unless another transaction holds it; whether it is finished now."""
    return not _cancel_free(organization_id, [run_id], conn) and not _unfinished(conn, run_id)
