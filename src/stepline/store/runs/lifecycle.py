"""A run's life: created (numbered, queued), claimed under a lease that its worker
renews, finished (which wakes a parent waiting for it); read one at a time or newest first.

A claim skips runs other claimers hold (PostgreSQL: `FOR UPDATE SKIP LOCKED`); a run whose
worker died (its lease expired) is claimable again. A claimed run whose record cannot be
loaded fails at once, so that it cannot be claimed over and over.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.documents.text import describe_error
from stepline.records import (
    FINISHED_RUN_STATUSES,
    ErrorDetails,
    ErrorStage,
    RunRecord,
    RunStatus,
    utcnow,
)
from stepline.store import mapping, workflows_sql
from stepline.store.clock import lease_times
from stepline.store.errors import (
    DuplicateError,
    LeaseLostError,
    RunNotFoundError,
    WorkflowNotFoundError,
    is_outage,
)
from stepline.store.events import insert_run_event
from stepline.store.repository import Repository
from stepline.store.runs import sql
from stepline.store.runs.control import wake_parent, wake_parent_of
from stepline.store.steps import step_counts, step_counts_of


class RunLifecycle(Repository):
    """Creating, claiming, renewing, finishing and reading runs."""

    async def create(self, run: RunRecord) -> RunRecord:
        """Insert the run, numbered 1 + the highest run number of its workflow (+ run.queued)."""

        def op(conn: sa.Connection) -> RunRecord:
            params = {"workflow_id": run.workflow_id}
            if conn.execute(workflows_sql.LOCK, params).first() is None:
                raise WorkflowNotFoundError(
                    f"run {run.id}: workflow {run.workflow_id} does not exist"
                )
            number = conn.execute(sql.NEXT_RUN_NUMBER, params).scalar_one()
            created = run.model_copy(update={"run_number": number, "step_counts": None})
            conn.execute(sql.INSERT_RUN, mapping.run_to_row(created))
            insert_run_event(
                conn, created.id, created.organization_id, created.status, run_number=number
            )
            return created

        try:
            return await self._write(op)
        except DuplicateError as exc:
            # A unique key a concurrent request took first: (organization, idempotency key).
            what = f"idempotency key {run.idempotency_key!r}" if run.idempotency_key else "its id"
            raise DuplicateError(f"run {run.id}: another run has {what}") from exc

    async def claim(
        self, worker_id: str, lease_s: float, *, run_id: UUID | None = None
    ) -> RunRecord | None:
        """Take the oldest claimable run (or only `run_id`) for `worker_id`, or None.

        Claimable: queued, or running under a lease that expired (its worker died); and,
        unless named, not of a workflow already running its `concurrency` limit of runs.
        The lease is measured by the database's clock (`store.clock`).
        """
        statement = sql.CLAIM_NEXT_RUN
        params: dict[str, Any] = {"worker_id": worker_id}
        if run_id is not None:
            params["run_id"] = run_id
            statement = sql.CLAIM_RUN
        # Concurrent claimers of one limited workflow could each count the other's claim
        # out (uncommitted): on PostgreSQL a claim is checked again under the workflow's
        # lock, and undone if it went past the limit. SQLite has one writer: no race.
        recheck = self.dialect == "postgresql" and run_id is None

        def op(conn: sa.Connection) -> RunRecord | None:
            params.update(lease_times(conn, lease_s))
            while True:
                savepoint = conn.begin_nested() if recheck else None
                found = conn.execute(statement, params).first()
                if found is None:
                    if savepoint is not None:
                        savepoint.commit()
                    return None
                run_id, organization_id, parent_run_id, workflow_id, limit = found
                if savepoint is not None:
                    if limit is not None and not _within_limit(conn, workflow_id, limit, params):
                        savepoint.rollback()
                        continue  # its workflow is at its limit: its runs wait
                    savepoint.commit()
                try:
                    row = conn.execute(sql.GET_RUN, {"run_id": run_id}).mappings().one()
                    claimed = mapping.row_to_run(row)
                except Exception as exc:
                    if is_outage(exc):
                        raise
                    # Executing it cannot even start: fail it, and claim the next one.
                    _fail_unloadable_run(conn, run_id, organization_id, parent_run_id, exc)
                    continue
                insert_run_event(
                    conn,
                    claimed.id,
                    claimed.organization_id,
                    claimed.status,
                    attempt=claimed.attempt,
                )
                return claimed

        return await self._write(op)

    async def renew_lease(self, run_id: UUID, worker_id: str, lease_s: float) -> bool:
        """Extend `worker_id`'s lease on the run (by the database's clock); False if the
        lease is no longer its own."""

        def op(conn: sa.Connection) -> bool:
            params = {"run_id": run_id, "worker_id": worker_id, **lease_times(conn, lease_s)}
            return sql.RENEW_LEASE.execute(conn, params) == 1

        return await self._write(op)

    async def finish(
        self,
        run_id: UUID,
        worker_id: str | None,
        *,
        status: RunStatus,
        output: Any = None,
        error: str | None = None,
        error_details: ErrorDetails | None = None,
        total_tokens: int | None = None,
        total_cost: float | None = None,
    ) -> RunRecord:
        """Record the run's outcome and release its lease.

        A finished status (completed, failed, cancelled) also sets `completed_at` and
        `duration_ms`; any other (waiting_for_human, queued) only releases the lease, so
        that a later claim picks the run up again. With `worker_id`, raises LeaseLostError
        if another worker holds the run now; None skips that check (e.g. the API cancels
        a queued run).
        """
        status = RunStatus(status)

        def op(conn: sa.Connection) -> RunRecord:
            lease = conn.execute(sql.RUN_LEASE_FOR_UPDATE, {"run_id": run_id}).first()
            if lease is None:
                raise RunNotFoundError(f"run {run_id} not found")
            lease_owner, started_at = lease
            if worker_id is not None and lease_owner != worker_id:
                raise LeaseLostError(
                    f"run {run_id}: worker {worker_id!r} no longer holds the lease "
                    f"(held by {lease_owner!r})"
                )
            now = utcnow()
            completed_at = duration_ms = None
            if status in FINISHED_RUN_STATUSES:
                completed_at = now
                if started_at is not None:
                    duration_ms = int((now - started_at).total_seconds() * 1000)
            params = {
                "run_id": run_id,
                "now": now,
                "new_status": status.value,
                "new_output": output,
                "new_error": error,
                "new_error_details": None
                if error_details is None
                else error_details.model_dump(mode="json"),
                "new_total_tokens": total_tokens,
                "new_total_cost": total_cost,
                "new_completed_at": completed_at,
                "new_duration_ms": duration_ms,
            }
            row = conn.execute(sql.FINISH_RUN, params).mappings().one()
            finished = mapping.row_to_run(row)
            insert_run_event(
                conn,
                run_id,
                finished.organization_id,
                status,
                error=error,
                duration_ms=duration_ms,
            )
            wake_parent(conn, finished)
            return finished

        return await self._write(op)

    async def get(self, run_id: UUID, organization_id: UUID | None = None) -> RunRecord | None:
        """The run with its `step_counts`; None if missing (or in another organization)."""
        params: dict[str, Any] = {"run_id": run_id}
        statement = sql.GET_RUN
        if organization_id is not None:
            params["organization_id"] = organization_id
            statement = sql.GET_RUN_IN_ORGANIZATION

        def read(conn: sa.Connection) -> RunRecord | None:
            row = conn.execute(statement, params).mappings().first()
            if row is None:
                return None
            return mapping.row_to_run(row, step_counts(conn, run_id))

        return await self._read(read)

    async def ids_between(self, low: UUID, high: UUID, *, limit: int = 50) -> list[UUID]:
        """The ids of the runs from `low` to `high` (in id order, at most `limit`): with the
        smallest and largest UUID of a prefix, the runs whose id starts with it."""
        params = {"low": low, "high": high, "limit": limit}

        def read(conn: sa.Connection) -> list[UUID]:
            return list(conn.execute(sql.RUN_IDS_BETWEEN, params).scalars())

        return await self._read(read)

    async def list(
        self,
        organization_id: UUID | None = None,
        *,
        workflow_id: UUID | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs newest first (created_at, then id, descending), with their step counts."""
        if limit < 1:
            raise ValueError(f"runs.list: limit must be at least 1, got {limit}")
        statement = sql.list_runs(
            organization_id=organization_id is not None,
            workflow_id=workflow_id is not None,
            status=status is not None,
        )
        params: dict[str, Any] = {"limit": limit}
        if organization_id is not None:
            params["organization_id"] = organization_id
        if workflow_id is not None:
            params["workflow_id"] = workflow_id
        if status is not None:
            params["status"] = RunStatus(status).value

        def read(conn: sa.Connection) -> list[RunRecord]:
            rows = conn.execute(statement, params).mappings().all()
            counts = step_counts_of(conn, [row["id"] for row in rows])
            return [mapping.row_to_run(row, counts[row["id"]]) for row in rows]

        return await self._read(read)


def _within_limit(
    conn: sa.Connection, workflow_id: UUID, limit: int, params: dict[str, Any]
) -> bool:
    """Under the workflow's transaction lock (held to commit, so claimers of the workflow
    take turns): whether its running runs, this claim included, are within `limit`."""
    key = int.from_bytes(workflow_id.bytes[:8], "big", signed=True)
    conn.execute(sql.WORKFLOW_CLAIM_LOCK, {"key": key})
    running = conn.execute(
        sql.RUNNING_OF_WORKFLOW, {"workflow_id": workflow_id, "now": params["now"]}
    ).scalar_one()
    return int(running) <= limit


def _fail_unloadable_run(
    conn: sa.Connection,
    run_id: UUID,
    organization_id: UUID,
    parent_run_id: UUID | None,
    exc: Exception,
) -> None:
    """Fail a claimed run whose record cannot be loaded (its inputs, most likely: nothing
    else of a run not yet finished comes from outside), and wake its parent, if any."""
    reason = f"the run's record could not be loaded: {describe_error(exc)}"
    details = ErrorDetails(
        type=type(exc).__name__,
        message=reason,
        context={"error_stage": ErrorStage.input_collection.value},
    )
    conn.execute(
        sql.FAIL_UNLOADABLE_RUN,
        {
            "run_id": run_id,
            "now": utcnow(),
            "new_error": reason,
            "new_error_details": details.model_dump(mode="json"),
        },
    )
    insert_run_event(conn, run_id, organization_id, RunStatus.failed, error=reason)
    if parent_run_id is not None:
        wake_parent_of(conn, run_id, parent_run_id, RunStatus.failed)
