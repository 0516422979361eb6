"""Run events: every transition of a run and of its steps, in commit order.

Each transition writes its event in the same transaction as the change itself (the hooks
are in the verbs of `runs` and `steps` that change one, through `insert_run_event` and
`step_event_params`), so an event exists exactly when its change does and the
SSE stream can replay a run from any event id. Event ids increase in commit order within
a run: a run's transitions come from one writer at a time (the store's single writer of
the process that holds the run, or a row lock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import RunStatus, StepRecord, utcnow
from stepline.store import events_sql as sql
from stepline.store.repository import Repository
from stepline.store.writer import mark_written

MAX_EVENTS = 1000

TERMINAL_RUN_EVENTS = frozenset(
    f"run.{status.value}" for status in (RunStatus.completed, RunStatus.failed, RunStatus.cancelled)
)
"""The event types after which a run emits nothing more."""


class RunEvent(BaseModel):
    """One transition of a run (`run.<status>`) or of one of its steps (`step.<status>`)."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(description="Increases with each event of the run; the SSE event id.")
    run_id: UUID
    type: str = Field(description="run.queued, run.running, run.completed, step.running...")
    step_id: UUID | None = Field(
        default=None, description="The step record's UUID, for step events."
    )
    data: dict[str, Any]
    created_at: datetime


def step_event_params(step: StepRecord) -> dict[str, Any]:
    """The `events_sql.INSERT` parameters of a step's current state (`step.<status>`)."""
    return {
        "run_id": step.run_id,
        "organization_id": step.organization_id,
        "type": f"step.{step.status.value}",
        "step_uuid": step.id,
        "data": {
            "step_id": step.step_id,
            "node_id": step.node_id,
            "status": step.status.value,
            "status_reason": step.status_reason,
            "iteration": step.iteration,
            "loop_id": step.loop_id,
            "order_key": step.order_key,
            "started_at": step.started_at,
            "completed_at": step.completed_at,
            "error": step.error,
        },
        "created_at": step.updated_at,
    }


def insert_run_event(
    conn: sa.Connection,
    run_id: UUID,
    organization_id: UUID,
    status: RunStatus | str,
    **data: Any,
) -> None:
    """Write the `run.<status>` event; `data` always holds the status."""
    status = RunStatus(status)
    sql.INSERT.execute(
        conn,
        {
            "run_id": run_id,
            "organization_id": organization_id,
            "type": f"run.{status.value}",
            "step_uuid": None,
            "data": {"status": status.value, **data},
            "created_at": utcnow(),
        },
    )
    mark_written(conn, run_id)  # rings the store's RunBell once committed (as step_write)


def _row_to_event(row: Any) -> RunEvent:
    return RunEvent(
        id=row["id"],
        run_id=row["run_id"],
        type=row["type"],
        step_id=row["step_uuid"],
        data=row["data"],
        created_at=row["created_at"],
    )


class EventRepository(Repository):
    """Reading a run's events back (they are written with the changes they tell of)."""

    async def list(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        after_id: int | None = None,
        limit: int = MAX_EVENTS,
    ) -> list[RunEvent]:
        """The run's events after `after_id` (from the first without it), oldest first."""
        if not 1 <= limit <= MAX_EVENTS:
            raise ValueError(f"limit must be between 1 and {MAX_EVENTS}, got {limit}")
        params = {
            "run_id": run_id,
            "organization_id": organization_id,
            "after_id": after_id if after_id is not None else -1,
            "limit": limit,
        }

        def read(conn: sa.Connection) -> list[RunEvent]:
            return [_row_to_event(row) for row in conn.execute(sql.AFTER, params).mappings()]

        return await self._read(read)
