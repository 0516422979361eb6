"""The store's control verbs: pause and resume for human review, retry, replay, child runs.

Each verb is one transaction that locks the run row first (PostgreSQL: `FOR UPDATE`;
SQLite: the single writer), so a review decided while the run pauses, or a child that
finishes while its parent pauses, can never be lost between two writers: whichever
commits second sees the other's work and queues the run again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import (
    FINISHED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    new_id,
    utcnow,
)
from stepline.step_order import DefinitionOrder
from stepline.store import mapping, steps_sql
from stepline.store.errors import (
    LeaseLostError,
    RunNotFoundError,
    StateConflictError,
    StepNotFoundError,
)
from stepline.store.events import insert_run_event
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository
from stepline.store.runs import sql
from stepline.store.steps import step_write

RETRIED = "the run is retried: this step runs again"
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """What `decide_review` did: the step and run as they are now, and whether it changed."""

    step: StepRecord
    run: RunRecord
    changed: bool


def _locked_run(conn: sa.Connection, run_id: UUID, organization_id: UUID | None) -> RunRecord:
    row = conn.execute(sql.locked(run_id, organization_id)).mappings().first()
    if row is None:
        raise RunNotFoundError(f"run {run_id} not found")
    return mapping.row_to_run(row)


def _set_run(conn: sa.Connection, run: RunRecord, **values: Any) -> RunRecord:
    values["updated_at"] = utcnow()
    row = conn.execute(sql.set_run_returning(run.id, values)).mappings().one()
    return mapping.row_to_run(row)


def _requeue(conn: sa.Connection, run: RunRecord, reason: str) -> RunRecord:
    queued = _set_run(
        conn, run, status=RunStatus.queued.value, lease_owner=None, lease_expires_at=None
    )
    insert_run_event(conn, run.id, run.organization_id, RunStatus.queued, reason=reason)
    return queued


def _write_step(conn: sa.Connection, step: StepRecord) -> None:
    """Update a step and write its event within this transaction, as `steps.update`."""
    step.updated_at = utcnow()
    step_write(step)(conn)


def _has_work_to_resume(conn: sa.Connection, run_id: UUID) -> bool:
    """Whether a paused run can go on: a decided review, or a child run that finished."""
    if conn.execute(sql.decided_review(run_id)).first() is not None:
        return True
    return conn.execute(sql.finished_child(run_id)).first() is not None


def wake_parent(conn: sa.Connection, child: RunRecord) -> None:
    """A child run finished: queue its parent again if the parent paused waiting for it."""
    if child.parent_run_id is not None:
        wake_parent_of(conn, child.id, child.parent_run_id, child.status)


def wake_parent_of(
    conn: sa.Connection, child_id: UUID, parent_run_id: UUID, status: RunStatus
) -> None:
    """`wake_parent`, from the child's id, its parent's and its status."""
    if status not in FINISHED_RUN_STATUSES:
        return
    parent = _locked_run(conn, parent_run_id, None)
    if parent.status is RunStatus.waiting_for_human:
        _requeue(conn, parent, f"child run {child_id} {status.value}")


class RunControl(Repository):
    """Human review, retry, replay and child runs."""

    async def pause(self, run_id: UUID, worker_id: str | None) -> RunRecord:
        """The run waits for a person: release its lease as `waiting_for_human`.

        If what it waits for already happened (a review decided, a child run finished,
        while this worker was still driving other branches), it is queued at once instead.
        """

        def op(conn: sa.Connection) -> RunRecord:
            run = _locked_run(conn, run_id, None)
            if worker_id is not None and run.lease_owner != worker_id:
                raise LeaseLostError(
                    f"run {run_id}: worker {worker_id!r} no longer holds the lease "
                    f"(held by {run.lease_owner!r})"
                )
            if _has_work_to_resume(conn, run_id):
                return _requeue(conn, run, "a review was decided while the run was running")
            paused = _set_run(
                conn,
                run,
                status=RunStatus.waiting_for_human.value,
                lease_owner=None,
                lease_expires_at=None,
            )
            insert_run_event(conn, run_id, run.organization_id, RunStatus.waiting_for_human)
            return paused

        return await self._write(op)

    async def find_child(self, parent_step_id: UUID) -> RunRecord | None:
        """The child run a step started (sub_workflow), if any."""

        def read(conn: sa.Connection) -> RunRecord | None:
            row = conn.execute(sql.child_of_step(parent_step_id)).mappings().first()
            return None if row is None else mapping.row_to_run(row)

        return await self._read(read)

    async def retry(self, organization_id: UUID, run_id: UUID) -> RunRecord:
        """Queue a failed or cancelled run again, to continue from its failed steps.

        Completed steps keep their outputs and are not run again; every other step is
        reset to pending (keeping its attempts, so the next try is attempt n + 1).
        StateConflictError if the run is not failed or cancelled.
        """

        def op(conn: sa.Connection) -> RunRecord:
            run = _locked_run(conn, run_id, organization_id)
            if run.status not in (RunStatus.failed, RunStatus.cancelled):
                raise StateConflictError(
                    f"run {run_id} is {run.status.value}: only a failed or cancelled run "
                    "can be retried"
                )
            not_completed = sql.steps_in(run_id, [StepStatus.completed], negate=True)
            rows = conn.execute(not_completed).mappings()
            for row in list(rows):
                step = mapping.row_to_step(row)
                _reset_step(step)
                _write_step(conn, step)
            retried = _set_run(
                conn,
                run,
                status=RunStatus.queued.value,
                output=None,
                error=None,
                error_details=None,
                completed_at=None,
                duration_ms=None,
                cancel_requested_at=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            insert_run_event(conn, run_id, organization_id, RunStatus.queued, reason="retry")
            return retried

        return await self._write(op)

    async def decide_review(
        self,
        organization_id: UUID,
        run_id: UUID,
        step_key: UUID | str,
        *,
        approved: bool,
        reviewer: str | None,
        output: Any = _UNSET,
        comment: str | None = None,
    ) -> ReviewDecision:
        """Record a person's decision on a step waiting for review, and queue its run.

        The same decision again changes nothing (`changed` False); a different one, or a
        decision on a step that is not under review, raises StateConflictError.
        `step_key` is the step's UUID or its step_id.
        """

        def op(conn: sa.Connection) -> ReviewDecision:
            run = _locked_run(conn, run_id, organization_id)
            step = _step_of(conn, run_id, step_key)
            review = dict((step.step_metadata or {}).get("review") or {})
            if step.human_review_approved is not None:
                same = step.human_review_approved == approved and (
                    output is _UNSET or review.get("output", _UNSET) == output
                )
                if same:
                    return ReviewDecision(step, run, False)
                verdict = "approved" if step.human_review_approved else "rejected"
                raise StateConflictError(
                    f"step {step.step_id!r} was already {verdict} by "
                    f"{step.human_reviewer or 'a reviewer'} at {step.human_reviewed_at}"
                )
            if not step.requires_human_review or step.status is not StepStatus.waiting_for_human:
                raise StateConflictError(
                    f"step {step.step_id!r} is {step.status.value}, not waiting for a review"
                )
            if run.status in FINISHED_RUN_STATUSES:
                raise StateConflictError(f"run {run_id} is already {run.status.value}")
            now = utcnow()
            review = {"comment": comment, "decided_at": now.isoformat()}
            if output is not _UNSET:
                review["output"] = output
            step.human_reviewed_at = now
            step.human_review_approved = approved
            step.human_reviewer = reviewer
            step.step_metadata = {**(step.step_metadata or {}), "review": review}
            step.status_reason = "approved; the run resumes" if approved else "rejected"
            _write_step(conn, step)
            if run.status is RunStatus.waiting_for_human:
                run = _requeue(conn, run, f"review of {step.step_id!r} decided")
            return ReviewDecision(step, run, True)

        return await self._write(op)

    async def page_reviews(
        self,
        organization_id: UUID,
        *,
        workspace_id: UUID | None = None,
        workflow_id: UUID | None = None,
        limit: int = 100,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[StepRecord]:
        """Steps waiting for a person's decision, oldest first."""
        query = sql.pending_reviews(organization_id, workflow_id, workspace_id)

        def read(conn: sa.Connection) -> Page[StepRecord]:
            return read_page(
                conn,
                query,
                sql.REVIEWS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=lambda row: (row["updated_at"], row["id"]),
                item_of=mapping.row_to_step,
            )

        return await self._read(read)

    async def replay(
        self,
        original: RunRecord,
        *,
        reuse: Iterable[str],
        inputs: dict[str, Any],
        workflow_version: int,
        from_node: str,
    ) -> RunRecord:
        """A new queued run linked to `original` (`replay_of`), with its reused steps.

        `reuse` names the top-level nodes whose finished steps (and, for a loop, every
        step of its body) are copied into the new run as they were: the engine finds them
        on record and does not run them again.
        """
        reused = frozenset(reuse)

        def op(conn: sa.Connection) -> RunRecord:
            params = {"workflow_id": original.workflow_id}
            number = conn.execute(sql.NEXT_RUN_NUMBER, params).scalar_one()
            now = utcnow()
            replay = RunRecord(
                workflow_id=original.workflow_id,
                workflow_version=workflow_version,
                organization_id=original.organization_id,
                workspace_id=original.workspace_id,
                user_id=original.user_id,
                run_number=number,
                trigger="replay",
                inputs=inputs,
                replay_of=original.id,
                concurrency_limit=original.concurrency_limit,
                created_at=now,
                updated_at=now,
            )
            conn.execute(sql.INSERT_RUN, mapping.run_to_row(replay))
            reusable = sql.steps_in(original.id, [StepStatus.completed, StepStatus.skipped])
            rows = conn.execute(reusable).mappings()
            copies = []
            order = _definition_order(conn, original.workflow_id, workflow_version)
            for row in rows:
                step = mapping.row_to_step(row)
                if _top_node(step) not in reused:
                    continue
                # Placed in the replay's version, which may order its nodes otherwise.
                frames = [
                    (frame.container_id, frame.iteration)
                    for frame in (step.iteration_context.frames if step.iteration_context else [])
                ]
                order_key = order.key(step.node_id, frames) if order else None
                copies.append(
                    mapping.step_to_row(
                        step.model_copy(
                            update={
                                "id": new_id(),
                                "run_id": replay.id,
                                "workflow_version": workflow_version,
                                "order_key": order_key or step.order_key,
                                "step_metadata": {
                                    **(step.step_metadata or {}),
                                    "replayed_from": {
                                        "run_id": str(original.id),
                                        "id": str(step.id),
                                    },
                                },
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    )
                )
            if copies:
                steps_sql.INSERT.executemany(conn, copies)
            insert_run_event(
                conn,
                replay.id,
                replay.organization_id,
                RunStatus.queued,
                run_number=number,
                replay_of=str(original.id),
                from_node=from_node,
                reused_steps=len(copies),
            )
            return replay

        return await self._write(op)


def _definition_order(
    conn: sa.Connection, workflow_id: UUID, version: int
) -> DefinitionOrder | None:
    definition = conn.execute(sql.definition(workflow_id, version)).scalar()
    return None if definition is None else DefinitionOrder(definition)


def _step_of(conn: sa.Connection, run_id: UUID, key: UUID | str) -> StepRecord:
    row = conn.execute(sql.step_of(run_id, key)).mappings().first()
    if row is None:
        raise StepNotFoundError(f"step {key} of run {run_id} not found")
    return mapping.row_to_step(row)


def _top_node(step: StepRecord) -> str:
    """The top-level node a step belongs to: its own, or its outermost container's."""
    context = step.iteration_context
    if context is not None and context.frames:
        return context.frames[0].container_id
    return step.node_id


def _reset_step(step: StepRecord) -> None:
    step.status = StepStatus.pending
    step.status_reason = RETRIED
    step.completed_at = None
    step.duration_ms = None
    step.error = None
    step.error_stage = None
    step.error_category = None
    step.error_details = None
    if step.attempts and step.attempts[-1].status in (
        StepStatus.running,
        StepStatus.waiting_for_human,
    ):
        step.attempts[-1].status = StepStatus.cancelled
    step.started_at = None
    if step.requires_human_review:
        # The step will be reviewed afresh; the earlier decision stays in its metadata.
        metadata = dict(step.step_metadata or {})
        if step.human_review_approved is not None:
            metadata["previous_review"] = {
                **(metadata.pop("review", None) or {}),
                "approved": step.human_review_approved,
                "reviewer": step.human_reviewer,
            }
        step.step_metadata = metadata or None
        step.requires_human_review = None
        step.human_reviewed_at = None
        step.human_review_approved = None
        step.human_reviewer = None
