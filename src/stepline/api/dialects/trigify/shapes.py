"""The canonical run and step records in Trigify's shapes: pure functions, no I/O.

Statuses: Trigify has three for an execution and five for a step, so stepline's are
folded onto them (docs/dialects/trigify.md has the tables). Times are ISO-8601 UTC with
milliseconds and a `Z`; durations are whole milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stepline.api.dialects.trigify.models import (
    Column,
    Execution,
    ExecutionList,
    ExecutionStatus,
    ExecutionSummary,
    Pagination,
    Step,
    StepStatus,
)
from stepline.records import RunRecord, RunStatus, StepRecord
from stepline.records import StepStatus as Canonical
from stepline.spec.columns import mapped_output
from stepline.spec.models import ColumnSpec

EXECUTION_STATUS: dict[RunStatus, ExecutionStatus] = {
    RunStatus.queued: "running",
    RunStatus.running: "running",
    RunStatus.waiting_for_human: "running",
    RunStatus.completed: "completed",
    RunStatus.failed: "failed",
    RunStatus.cancelled: "failed",
}
"""A run not finished is running (Trigify has no queued or paused); a cancelled run failed."""

STEP_STATUS: dict[Canonical, StepStatus] = {
    Canonical.pending: "pending",
    Canonical.queued: "pending",
    Canonical.running: "running",
    Canonical.waiting_for_human: "running",
    Canonical.completed: "completed",
    Canonical.skipped: "skipped",
    Canonical.error: "failed",
    Canonical.cancelled: "failed",
}
"""A cancelled step that never started is `skipped` instead (see `step_status`)."""

CANCELLED = "the run was cancelled"


def iso(moment: datetime) -> str:
    """2026-03-27T10:15:00.100Z: UTC, milliseconds, Z (a naive time is taken as UTC)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def elapsed_ms(
    recorded: int | None, started: datetime | None, ended: datetime | None
) -> int | None:
    """The recorded duration, else the span from start to end; None until it ended."""
    if recorded is not None:
        return recorded
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds() * 1000))


def execution_status(run: RunRecord) -> ExecutionStatus:
    return EXECUTION_STATUS[run.status]


def run_error(run: RunRecord) -> str | None:
    if run.status is RunStatus.cancelled:
        return run.error or CANCELLED
    return run.error


def step_status(step: StepRecord) -> StepStatus:
    if step.status is Canonical.cancelled and step.started_at is None:
        return "skipped"
    return STEP_STATUS[step.status]


def step_error(step: StepRecord) -> str | None:
    status = step_status(step)
    if status != "failed":
        return None
    if step.status is Canonical.cancelled:
        return step.error or CANCELLED
    return step.error or "the step failed"


def as_object(value: Any) -> dict[str, Any] | None:
    """Trigify's input and output are objects: another value is wrapped as {'value': ...}."""
    if value is None:
        return None
    return value if isinstance(value, dict) else {"value": value}


def step(record: StepRecord, columns: Sequence[ColumnSpec] | None) -> Step:
    ended = record.completed_at
    return Step(
        step_id=record.step_id,
        step_name=record.node_label or record.node_id,
        operation=record.node_type,
        status=step_status(record),
        started_at=iso(record.started_at or record.created_at),
        ended_at=iso_or_none(ended),
        duration_ms=elapsed_ms(record.duration_ms, record.started_at, ended),
        input=as_object(record.inputs) or {},
        output=as_object(record.outputs),
        mapped_output=mapped_output(columns, record.node_id, record.outputs),
        error=step_error(record),
    )


def execution(
    run: RunRecord, steps: Sequence[StepRecord], columns: Sequence[ColumnSpec] | None
) -> Execution:
    """The execution detail (seed 003): the run with every step, in execution order."""
    return Execution(
        id=str(run.id),
        run_id=str(run.id),
        workflow_id=str(run.workflow_id),
        status=execution_status(run),
        started_at=iso(run.started_at or run.created_at),
        ended_at=iso_or_none(run.completed_at),
        duration_ms=elapsed_ms(run.duration_ms, run.started_at, run.completed_at),
        event_name=run.trigger,
        created=iso(run.created_at),
        column_config=None if columns is None else [_column(c) for c in columns],
        steps=[step(record, columns) for record in steps],
        error=run_error(run),
    )


def _column(column: ColumnSpec) -> Column:
    return Column(
        id=column.id, stepId=column.step_id, fieldPath=column.field_path, label=column.label
    )


def execution_summary(run: RunRecord) -> ExecutionSummary:
    return ExecutionSummary(
        run_id=str(run.id),
        status=execution_status(run),
        started_at=iso(run.started_at or run.created_at),
        completed_at=iso_or_none(run.completed_at),
        duration=elapsed_ms(run.duration_ms, run.started_at, run.completed_at),
        error=run_error(run),
    )


def execution_list(
    runs: Sequence[RunRecord], *, page: int, page_size: int, total: int
) -> ExecutionList:
    """One page of executions (newest first); total_pages is 0 when there are none."""
    return ExecutionList(
        executions=[execution_summary(run) for run in runs],
        pagination=Pagination(
            page=page,
            page_size=page_size,
            total_count=total,
            total_pages=math.ceil(total / page_size),
        ),
    )
