"""The Retab dialect's pure views of the canonical records: every kind and status mapped,
handles derived where a kind records none, loops, errors and skips in both generations'
shapes, and FastAPI's error envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from stepline.api.dialects.retab import envelope
from stepline.api.dialects.retab.errors import location
from stepline.api.dialects.retab.handles import file_ref
from stepline.api.dialects.retab.shapes import (
    lifecycle,
    run_view,
    seed_step,
    today_step,
    trigger_type,
)
from stepline.api.dialects.retab.vocabulary import (
    KNOWN_KINDS,
    block_type,
    run_lifecycle_status,
    seed_node_type,
    seed_run_status,
    step_lifecycle_status,
    step_status,
)
from stepline.api.errors import ErrorDetail, Failure
from stepline.nodes.registry import load_registry
from stepline.records import (
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    IterationContext,
    IterationFrame,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)

PDF = {"file_id": "f-1", "filename": "a.pdf", "mime_type": "application/pdf"}
AT = datetime(2026, 3, 12, 9, 0, 0, tzinfo=UTC)


def step(**fields: Any) -> StepRecord:
    base: dict[str, Any] = {
        "run_id": uuid4(),
        "workflow_id": uuid4(),
        "workflow_version": 1,
        "organization_id": uuid4(),
        "node_id": "n",
        "step_id": "n",
        "node_type": "code",
        "node_label": "N",
        "seq": 0,
        "created_at": AT,
        "updated_at": AT,
    }
    return StepRecord(**{**base, **fields})


def test_every_built_in_kind_has_its_retab_types() -> None:
    assert set(load_registry(plugins=False)) == KNOWN_KINDS
    assert seed_node_type("code") == "functions" and block_type("code") == "function"
    assert seed_node_type("hil") == "hil" and block_type("hil") == "function"
    assert (seed_node_type("merge_pdf"), block_type("merge_pdf")) == ("merge_pdf", "edit")
    assert (seed_node_type("start"), block_type("start")) == ("start_json", "start_json")
    # A plugin's kind is Retab's generic block.
    assert (seed_node_type("shout"), block_type("shout")) == ("functions", "function")


def test_every_status_has_its_retab_status() -> None:
    assert {s: step_lifecycle_status(s) for s in StepStatus}[
        StepStatus.waiting_for_human
    ] == "awaiting_review"
    assert step_lifecycle_status(StepStatus.queued) == "queued"
    assert {s: (seed_run_status(s), run_lifecycle_status(s)) for s in RunStatus} == {
        RunStatus.queued: ("running", "pending"),
        RunStatus.running: ("running", "running"),
        RunStatus.waiting_for_human: ("waiting_for_human", "awaiting_review"),
        RunStatus.completed: ("completed", "completed"),
        RunStatus.failed: ("error", "error"),
        RunStatus.cancelled: ("cancelled", "cancelled"),
    }


def test_handles_are_derived_from_a_steps_inputs_and_outputs_where_none_are_recorded() -> None:
    shown = seed_step(step(inputs={"x": 1}, outputs=[1, 2], status=StepStatus.completed))
    assert shown["handle_inputs"] == {"input-json-0": {"type": "json", "data": {"x": 1}}}
    assert shown["handle_outputs"] == {"output-json-0": {"type": "json", "data": {"value": [1, 2]}}}
    assert shown["output"] == {"value": [1, 2]}
    documents = seed_step(
        step(inputs={"d": PDF}, input_document=PDF, split_documents={"A": PDF, "B": PDF})
    )
    assert documents["handle_inputs"] == {"input-file-0": {"type": "file", "document": PDF}}
    assert set(documents["handle_outputs"]) == {"output-file-A", "output-file-B"}
    made = seed_step(step(outputs={"ok": True}, output_document=PDF))
    assert made["handle_outputs"] == {"output-file-0": {"type": "file", "document": PDF}}
    # Recorded handles are served as recorded.
    recorded = {"high": {"type": "json", "data": {"a": 1}}}
    assert seed_step(step(outputs={"a": 1}, handle_outputs=recorded))["handle_outputs"] == recorded
    # A pending step has none: the keys are left out, as seed 004 leaves out nulls.
    pending = seed_step(step())
    assert "handle_inputs" not in pending and "output" not in pending
    assert today_step(step())["handle_inputs"] == {}


def test_todays_handles_name_a_file_by_id() -> None:
    shown = today_step(step(input_document=PDF, outputs={"a": 1}))
    assert shown["handle_inputs"] == {
        "input-file-0": {
            "type": "file",
            "document": {"id": "f-1", "filename": "a.pdf", "mime_type": "application/pdf"},
            "data": None,
        }
    }
    assert shown["handle_outputs"]["output-json-0"] == {
        "type": "json",
        "document": None,
        "data": {"a": 1},
    }
    # Today's data is the value as it is; seed 004's is an object.
    listed = step(outputs=[1, 2])
    assert today_step(listed)["handle_outputs"]["output-json-0"]["data"] == [1, 2]
    assert seed_step(listed)["handle_outputs"]["output-json-0"]["data"] == {"value": [1, 2]}


def test_a_loop_iterations_step_carries_its_containers_outermost_first() -> None:
    context = IterationContext(
        frames=[
            IterationFrame(container_id="outer", container_type="for_each", iteration=1),
            IterationFrame(container_id="inner", container_type="while_loop", iteration=0),
        ]
    )
    inner = step(
        node_id="extract",
        step_id="outer_iter_1_inner_iter_0_extract",
        loop_id="inner",
        iteration=0,
        iteration_context=context,
    )
    seed = seed_step(inner)
    assert seed["step_id"] == "outer_iter_1_inner_iter_0_extract"
    assert (seed["loop_id"], seed["iteration"]) == ("inner", 0)
    containers = [
        {"container_id": "outer", "iteration": 1, "is_parallel": False},
        {"container_id": "inner", "iteration": 0, "is_parallel": False},
    ]
    assert seed["iteration_context"] == {"containers": containers}
    assert today_step(inner)["loop_containers"] == containers


def test_a_failed_step_in_both_generations() -> None:
    failed = step(
        status=StepStatus.error,
        error="ValueError: no",
        error_stage=ErrorStage.execution,
        error_category=ErrorCategory.permanent,
        error_details=ErrorDetails(type="ValueError", message="no", traceback="Traceback..."),
    )
    details = {
        "message": "no",
        "stack_trace": "Traceback...",
        "block_id": "n",
        "block_name": "N",
        "error_code": "ValueError",
        "context": None,
    }
    seed = seed_step(failed)
    assert seed["error_details"] == details
    assert (seed["error_stage"], seed["error_category"]) == ("execution", "permanent")
    assert lifecycle(failed) == {
        "status": "error",
        "message": "ValueError: no",
        "stage": "execution",
        "category": "permanent",
        "details": details,
    }


def test_skipped_and_cancelled_steps_say_why() -> None:
    reason = "branch high was not taken"
    assert lifecycle(step(status=StepStatus.skipped, status_reason=reason)) == {
        "status": "skipped",
        "reason": reason,
    }
    assert lifecycle(step(status=StepStatus.cancelled))["reason"]
    assert lifecycle(step(status=StepStatus.waiting_for_human)) == {"status": "awaiting_review"}


def test_the_run_names_its_waiting_nodes_and_splits_its_inputs() -> None:
    run = RunRecord(
        workflow_id=uuid4(),
        workflow_version=2,
        organization_id=uuid4(),
        status=RunStatus.failed,
        error="step 'x' failed",
        trigger="cli",
        inputs={"invoice": {"file_id": "f-1"}, "note": "n"},
        created_at=AT,
    )
    steps = [
        step(node_id="r", step_id="loop_iter_0_r", status=StepStatus.waiting_for_human),
        step(node_id="r", step_id="loop_iter_1_r", status=StepStatus.waiting_for_human),
        step(node_id="x", step_id="x", status=StepStatus.error, error="boom"),
    ]
    document = {"file_id": "f-1", "filename": "a.pdf", "mime_type": "application/pdf"}
    view = run_view(
        run,
        workflow_name="w",
        workflow_version_id="v",
        steps=steps,
        documents={"invoice": document},
    )
    assert view["waiting_for_node_ids"] == ["r"]
    assert view["status"] == "error"
    assert view["lifecycle"] == {
        "status": "error",
        "message": "step 'x' failed",
        "stage": None,
        "category": None,
        "details": {
            "message": "boom",
            "stack_trace": None,
            "block_id": "x",
            "block_name": "N",
            "error_code": None,
            "context": None,
        },
        "failing_step_id": "x",
    }
    assert view["trigger"] == {"type": "manual"}
    shown = {"id": "f-1", "filename": "a.pdf", "mime_type": "application/pdf"}
    assert view["inputs"] == {"documents": {"invoice": shown}, "json_data": {"note": "n"}}
    assert view["created_at"] == "2026-03-12T09:00:00Z" == view["timing"]["created_at"]
    paused = run.model_copy(update={"status": RunStatus.waiting_for_human})
    assert run_view(paused, workflow_name="w", workflow_version_id="v", steps=steps, documents={})[
        "lifecycle"
    ] == {"status": "awaiting_review", "waiting_for_block_ids": ["r"]}


def test_triggers_and_deleted_files_in_todays_words() -> None:
    assert [trigger_type(t) for t in ("api", "cli", "replay", "sub_workflow", "webhook")] == [
        "api",
        "manual",
        "restart",
        "custom",
        "webhook",
    ]
    # A file deleted since the run: today's FileRef still has every key a string.
    gone = {"file_id": "f-2", "filename": None, "mime_type": None}
    assert file_ref(gone) == {"id": "f-2", "filename": "", "mime_type": "application/octet-stream"}


def test_todays_lifecycle_status_reads_back_as_steplines() -> None:
    for status in StepStatus:
        assert step_status(step_lifecycle_status(status)) is status


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        ("query.limit", ["query", "limit"]),
        ("body.json_inputs.items[2].id", ["body", "json_inputs", "items", 2, "id"]),
        ("path.run_id", ["path", "run_id"]),
    ],
)
def test_fields_become_fastapi_locations(field: str, loc: list[str | int]) -> None:
    assert location(field) == loc


def test_the_envelope_is_fastapis() -> None:
    detail = [ErrorDetail(field="query.limit", message="too big")]
    assert envelope(Failure(422, "validation_error", "bad", detail, "r")) == (
        422,
        {"detail": [{"loc": ["query", "limit"], "msg": "too big", "type": "validation_error"}]},
    )
    assert envelope(Failure(404, "not_found", "run x not found", [], "r")) == (
        404,
        {"detail": "run x not found"},
    )
    # A 422 is always FastAPI's list, even when the failure names no field.
    assert envelope(Failure(422, "validation_error", "bad body", [], None)) == (
        422,
        {"detail": [{"loc": [], "msg": "bad body", "type": "validation_error"}]},
    )


SEED = Path("/work/shared/seeds/004_47dd8f7297e7bdb4.txt")
EXAMPLE = Path(__file__).parent / "examples" / "retab_steps.json"


@pytest.mark.skipif(not SEED.exists(), reason="seed 004 is not on this machine")
def test_the_committed_example_is_seed_004s() -> None:
    text = SEED.read_text()
    documented, _ = json.JSONDecoder().raw_decode(text[text.index("[") :])
    assert json.loads(EXAMPLE.read_text()) == documented
