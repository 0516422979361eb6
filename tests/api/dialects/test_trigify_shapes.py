"""Trigify's shapes and error envelope as pure functions of the canonical records: every
stepline status mapped, times in milliseconds with a Z, non-object values wrapped, loop
iterations named, and failures in Trigify's codes with a 400 for invalid requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from stepline.api.dialects.trigify import envelope, shapes
from stepline.api.errors import ErrorDetail, Failure
from stepline.records import RunRecord, RunStatus, StepRecord, StepStatus
from stepline.spec.models import ColumnSpec

T0 = datetime(2026, 3, 27, 10, 15, 0, 100_999, tzinfo=UTC)
WORKFLOW = uuid4()
ORG = uuid4()


def run(**fields: Any) -> RunRecord:
    base: dict[str, Any] = {
        "workflow_id": WORKFLOW,
        "workflow_version": 1,
        "organization_id": ORG,
        "created_at": T0,
    }
    return RunRecord(**(base | fields))


def step(node_id: str = "agent-1", **fields: Any) -> StepRecord:
    base: dict[str, Any] = {
        "run_id": uuid4(),
        "workflow_id": WORKFLOW,
        "workflow_version": 1,
        "organization_id": ORG,
        "node_id": node_id,
        "step_id": node_id,
        "node_type": "model",
        "node_label": node_id,
        "seq": 0,
        "created_at": T0,
    }
    return StepRecord(**(base | fields))


def test_every_run_status_has_a_trigify_status() -> None:
    assert set(shapes.EXECUTION_STATUS) == set(RunStatus)
    assert {status: shapes.execution_status(run(status=status)) for status in RunStatus} == {
        RunStatus.queued: "running",
        RunStatus.running: "running",
        RunStatus.waiting_for_human: "running",
        RunStatus.completed: "completed",
        RunStatus.failed: "failed",
        RunStatus.cancelled: "failed",
    }


def test_every_step_status_has_a_trigify_status() -> None:
    assert set(shapes.STEP_STATUS) == set(StepStatus)
    started = {"started_at": T0}
    assert {s: shapes.step_status(step(status=s, **started)) for s in StepStatus} == {
        StepStatus.pending: "pending",
        StepStatus.queued: "pending",
        StepStatus.running: "running",
        StepStatus.waiting_for_human: "running",
        StepStatus.completed: "completed",
        StepStatus.skipped: "skipped",
        StepStatus.error: "failed",
        StepStatus.cancelled: "failed",
    }


def test_a_cancelled_step_that_never_started_is_skipped_without_error() -> None:
    never = step(status=StepStatus.cancelled)
    assert shapes.step_status(never) == "skipped"
    assert shapes.step_error(never) is None
    stopped = step(status=StepStatus.cancelled, started_at=T0)
    assert shapes.step_error(stopped) == "the run was cancelled"


def test_times_are_utc_milliseconds_with_z() -> None:
    assert shapes.iso(T0) == "2026-03-27T10:15:00.100Z"
    plus_two = timezone(timedelta(hours=2))
    assert shapes.iso(datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)) == "2026-01-01T00:00:00.000Z"
    assert shapes.iso_or_none(None) is None


def test_durations_are_milliseconds_recorded_or_measured() -> None:
    assert shapes.elapsed_ms(2350, None, None) == 2350
    assert shapes.elapsed_ms(None, T0, T0 + timedelta(seconds=4.32)) == 4320
    assert shapes.elapsed_ms(None, T0, None) is None


def test_a_step_reads_its_columns_and_wraps_what_is_not_an_object() -> None:
    columns = [ColumnSpec(id="c", stepId="agent-1", fieldPath="[1]", label="Second")]
    record = step(
        status=StepStatus.completed,
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=2350),
        inputs="a prompt",
        outputs=["a", "b"],
    )
    shaped = shapes.step(record, columns)
    assert shaped.input == {"value": "a prompt"}
    assert shaped.output == {"value": ["a", "b"]}
    assert shaped.mapped_output == {"Second": "b"}  # paths address the output itself
    assert shaped.duration_ms == 2350
    assert shaped.ended_at == "2026-03-27T10:15:02.450Z"


def test_a_pending_step_starts_when_it_was_scheduled_and_has_an_empty_input() -> None:
    shaped = shapes.step(step(), None)
    assert shaped.status == "pending"
    assert shaped.started_at == "2026-03-27T10:15:00.100Z"
    assert (shaped.input, shaped.output, shaped.mapped_output) == ({}, None, None)
    assert (shaped.ended_at, shaped.duration_ms, shaped.error) == (None, None, None)


def test_a_loop_iteration_keeps_its_iteration_qualified_step_id() -> None:
    columns = [ColumnSpec(id="c", stepId="double", fieldPath="n", label="N")]
    iteration = step(
        "double",
        step_id="each_iter_1_double",
        loop_id="each",
        iteration=1,
        status=StepStatus.completed,
        outputs={"n": 4},
    )
    shaped = shapes.step(iteration, columns)
    assert shaped.step_id == "each_iter_1_double"
    assert shaped.mapped_output == {"N": 4}  # a column of the node reads every iteration


def test_an_execution_without_column_config_has_null_columns() -> None:
    shaped = shapes.execution(run(status=RunStatus.cancelled, trigger="schedule"), [], None)
    assert shaped.column_config is None
    assert shaped.event_name == "schedule"
    assert shaped.error == "the run was cancelled"
    assert shaped.id == shaped.run_id


@pytest.mark.parametrize(
    ("total", "page_size", "pages"),
    [(0, 20, 0), (1, 20, 1), (20, 20, 1), (21, 20, 2), (142, 20, 8)],
)
def test_total_pages_rounds_up(total: int, page_size: int, pages: int) -> None:
    listed = shapes.execution_list([], page=1, page_size=page_size, total=total)
    assert listed.pagination.total_pages == pages


def failure(status: int, message: str, *details: tuple[str, str], code: str = "x") -> Failure:
    return Failure(
        status, code, message, [ErrorDetail(field=f, message=m) for f, m in details], "r"
    )


def test_an_invalid_request_is_a_400_validation_error_naming_each_field() -> None:
    status, body = envelope(
        failure(422, "invalid request", ("query.page_size", "must be at most 100"))
    )
    assert status == 400
    assert body == {
        "success": False,
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "invalid request",
            "details": {"errors": ["query.page_size: must be at most 100"]},
            "suggestion": "page starts at 1; page_size is 1 to 100 (default 20).",
        },
    }


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (401, "no API key: send ...", "AUTH_REQUIRED"),
        (401, "the API key is not valid (unknown, revoked or expired)", "INVALID_API_KEY"),
        (403, "this API key lacks the 'read' scope", "FORBIDDEN"),
        (404, "run 1 not found", "NOT_FOUND"),
        (405, "Method Not Allowed", "METHOD_NOT_ALLOWED"),
        (413, "too large", "PAYLOAD_TOO_LARGE"),
        (500, "internal error", "INTERNAL_ERROR"),
        (400, "the body cannot be parsed", "BAD_REQUEST"),
    ],
)
def test_failures_take_trigifys_codes_and_a_suggestion(
    status: int, message: str, code: str
) -> None:
    answered, body = envelope(failure(status, message))
    assert answered == status
    assert body["error"]["code"] == code
    assert body["error"]["message"] == message
    assert "details" not in body["error"]
    if code != "BAD_REQUEST":
        assert body["error"]["suggestion"]
