"""Arcee's shapes as pure functions of the canonical records: every status mapped, times and
truncated seconds, the values later nodes see, Arcee's integration keys, the diagram's
escaping and loops, and the error body's FastAPI-style locations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from stepline.api.dialects.arcee.diagram import label_text, mermaid
from stepline.api.dialects.arcee.envelope import envelope, location
from stepline.api.dialects.arcee.graph import arcee_graph
from stepline.api.dialects.arcee.shapes import (
    RUN_STATUSES,
    STEP_STATUSES,
    elapsed_seconds,
    integration_result,
    model_completion,
    run_item,
    steps_view,
    timestamp,
)
from stepline.api.errors import ErrorDetail, Failure
from stepline.records import RunRecord, RunStatus, StepRecord, StepStatus, TokenUsage

T0 = datetime(2025, 3, 13, 2, 41, 15, 144470, tzinfo=UTC)
ORG = uuid4()


def a_run(**fields: Any) -> RunRecord:
    return RunRecord(workflow_id=uuid4(), workflow_version=1, organization_id=ORG, **fields)


def a_step(run: RunRecord, node_id: str, node_type: str, seq: int, **fields: Any) -> StepRecord:
    return StepRecord(
        run_id=run.id,
        workflow_id=run.workflow_id,
        workflow_version=1,
        organization_id=ORG,
        node_id=node_id,
        step_id=node_id,
        node_type=node_type,
        node_label=node_id,
        seq=seq,
        **fields,
    )


def test_every_stepline_status_has_an_arcee_status() -> None:
    assert set(STEP_STATUSES) == set(StepStatus)
    assert set(RUN_STATUSES) == set(RunStatus)
    assert STEP_STATUSES[StepStatus.error] == "failed"
    assert STEP_STATUSES[StepStatus.waiting_for_human] == "running"
    assert RUN_STATUSES[RunStatus.queued] == "pending"


def test_times_have_microseconds_and_z_and_seconds_are_truncated() -> None:
    assert timestamp(T0) == "2025-03-13T02:41:15.144470Z"
    assert timestamp(T0.replace(microsecond=0)) == "2025-03-13T02:41:15.000000Z"
    assert timestamp(T0.astimezone(ZoneInfo("Asia/Tokyo"))) == "2025-03-13T02:41:15.144470Z"
    assert timestamp(None) is None
    end = T0 + timedelta(seconds=2.24)
    assert elapsed_seconds(T0, end, now=T0 + timedelta(hours=1)) == 2
    assert elapsed_seconds(T0, T0 + timedelta(seconds=0.99), now=T0) == 0
    assert elapsed_seconds(T0, None, now=T0 + timedelta(seconds=7.9)) == 7  # still going
    assert elapsed_seconds(None, None, now=T0) == 0


def test_a_kind_that_records_no_run_context_is_shown_with_one() -> None:
    run = a_run(inputs={"name": "ada"}, status=RunStatus.running)
    first = a_step(
        run,
        "greet",
        "reshape",
        0,
        status=StepStatus.completed,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=1.5),
        inputs={"output": "hi ada"},
        outputs="hi ada",
        tokens=TokenUsage(prompt=1, completion=2, total=3),
    )
    second = a_step(
        run, "shout", "reshape", 1, status=StepStatus.running, started_at=T0 + timedelta(seconds=2)
    )
    second.inputs = {"output": "HI ADA"}
    third = a_step(run, "later", "reshape", 2)
    # Listed after `greet` but started before it completed (a parallel branch): not seen.
    beside = a_step(
        run, "beside", "reshape", 3, status=StepStatus.completed, started_at=T0, inputs={}
    )
    beside.completed_at = T0 + timedelta(seconds=0.5)
    shown = steps_view(run, [first, second, third, beside], now=T0 + timedelta(seconds=5))
    assert shown[0]["inputs"] == {
        "output": "hi ada",
        "run_id": str(run.id),
        "input_data": {"name": "ada"},
    }
    assert shown[0]["elapsed_time"] == 1 and shown[0]["tokens"] == 3
    assert shown[1]["inputs"]["input_data"] == {"name": "ada", "greet": "hi ada", "beside": None}
    assert shown[1]["status"] == "running" and shown[1]["elapsed_time"] == 3
    assert shown[3]["inputs"]["input_data"] == {"name": "ada"}
    assert shown[1]["end_time"] is None and shown[1]["outputs"] == {}
    assert shown[2]["status"] == "pending" and shown[2]["inputs"] == {}


def test_later_nodes_see_a_model_nodes_text_and_recorded_context_wins() -> None:
    run = a_run(inputs={"prompt": "joke"})
    completion = {
        "id": "c1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ha"}}],
        "content": "ha",
    }
    model = a_step(
        run,
        "model",
        "model",
        0,
        status=StepStatus.completed,
        inputs={"model": "m", "run_id": str(run.id), "input_data": {"prompt": "joke"}},
        outputs=completion,
    )
    recorded = {"prompt": "joke", "model": completion}
    share = a_step(
        run,
        "share",
        "integration",
        1,
        status=StepStatus.completed,
        inputs={"app_name": "slack", "action": "chat.meMessage", "input_data": recorded},
        outputs={"result": {"data": {"ok": True}, "error": None, "successful": True}},
    )
    run.output = share.outputs
    model_shown, share_shown = steps_view(run, [model, share], now=T0)
    assert share_shown["inputs"]["input_data"] == {"prompt": "joke", "model": "ha"}
    assert "content" not in model_shown["outputs"]
    assert model_shown["outputs"]["choices"][0]["message"]["tool_calls"] == []
    assert model_shown["outputs"]["prompt_logprobs"] is None
    item = run_item(run, [model, share], now=T0)
    assert item["all_outputs"]["model"] == "ha"
    assert item["outputs"]["result"]["successfull"] is True


def test_an_integration_step_carries_arcees_entity_and_result_keys() -> None:
    workspace = uuid4()
    run = a_run(workspace_id=workspace)
    step = a_step(
        run,
        "share",
        "integration",
        0,
        status=StepStatus.error,
        inputs={"app_name": "slack", "action": "chat.postMessage", "input_mapping": {}},
        step_metadata={"result": {"data": None, "error": "channel_not_found", "successful": False}},
        error="channel_not_found",
    )
    (shown,) = steps_view(run, [step], now=T0)
    assert list(shown["inputs"]) == [
        "app_name",
        "action",
        "entity_id",
        "workspace_type",
        "input_mapping",
        "run_id",
        "input_data",
    ]
    assert shown["inputs"]["entity_id"] == str(workspace)
    assert shown["status"] == "failed" and shown["error"] == "channel_not_found"
    assert list(shown["step_metadata"]["result"]) == ["data", "error", "successfull", "successful"]
    assert shown["step_metadata"]["result"]["successfull"] is False


def test_values_that_are_not_the_expected_shape_pass_through() -> None:
    assert integration_result("text") == "text"
    assert integration_result({"result": "x"}) == {"result": "x"}
    assert model_completion(None) is None
    assert model_completion(["a"]) == ["a"]


DEFINITION: dict[str, Any] = {
    "name": "w",
    "nodes": [
        {"id": "end", "type": "reshape", "label": 'say "hi" <b> | `x` #1\nnext', "config": {}},
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": [1, 2]},
            "body": {"nodes": [{"id": "inner", "type": "reshape", "config": {}}], "edges": []},
        },
        {"id": "pick", "type": "conditional", "config": {}},
    ],
    "edges": [
        {"from": "end", "to": "each"},
        {"from": "each", "to": "pick"},
        {"from": "pick", "to": "end", "handle": "a|b"},
    ],
}


def test_the_diagram_escapes_labels_draws_loops_and_never_uses_a_node_id_as_a_mermaid_id() -> None:
    text = mermaid(DEFINITION)
    lines = text.splitlines()
    assert lines[0] == "graph TD"
    assert (
        '    n0["say #quot;hi#quot; #lt;b#gt; #124; #96;x#96; #35;1 next (end)<br/>reshape"]'
        in lines
    )
    assert '    subgraph n1_body["body of each"]' in lines
    assert '        n1_0["inner<br/>reshape"]' in lines
    assert '    n1 -.->|"each iteration"| n1_body' in lines
    assert '    n2 -->|"a#124;b"| n0' in lines
    assert "    START --> n0" not in lines  # every node has an inbound edge here
    assert mermaid(DEFINITION) == text  # a pure function of the definition
    assert label_text("a\r\nb") == "a b"


def test_the_arcee_graph_runs_from_start_to_end() -> None:
    graph = arcee_graph(
        {
            "description": "d",
            "inputs": {"properties": {"x": {"default": 1}, "y": {}}},
            "nodes": [
                {"id": "a", "type": "reshape", "config": {"output": 1}},
                {"id": "b", "type": "end", "config": {}, "description": "the end"},
            ],
            "edges": [{"from": "a", "to": "b"}],
        }
    )
    assert graph["edges"] == [["START", "a"], ["a", "b"], ["b", "END"]]
    assert graph["nodes"]["b"] == {"type": "end", "metadata": {"description": "the end"}}
    assert graph["input_data"] == {"x": 1, "y": None}
    assert graph["entry_point"] == "a" and graph["selectedOutput"] == "b"


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        ("path.run_id", ["path", "run_id"]),
        ("body.nodes[2].id", ["body", "nodes", 2, "id"]),
        ("query.limit", ["query", "limit"]),
        ("body", ["body"]),
    ],
)
def test_a_field_becomes_fastapis_location(field: str, loc: list[Any]) -> None:
    assert location(field) == loc


def test_the_error_body_is_fastapis() -> None:
    assert envelope(Failure(404, "not_found", "run x not found", (), "r1")) == (
        404,
        {"detail": "run x not found"},
    )
    details = (ErrorDetail(field="query.limit", message="must be at least 1"),)
    status, body = envelope(Failure(422, "validation_error", "bad", details, None))
    assert status == 422
    assert body == {
        "detail": [
            {"loc": ["query", "limit"], "msg": "must be at least 1", "type": "validation_error"}
        ]
    }


def test_iterations_finishing_at_once_are_seen_without_comparing_their_outputs() -> None:
    run = a_run()
    iterations = [
        a_step(
            run,
            "double",
            "reshape",
            index,
            status=StepStatus.completed,
            started_at=T0,
            completed_at=T0 + timedelta(seconds=1),
            inputs={},
            outputs={"value": index},
        )
        for index in range(2)
    ]
    after = a_step(
        run,
        "after",
        "reshape",
        2,
        status=StepStatus.completed,
        started_at=T0 + timedelta(seconds=1),
        inputs={},
    )
    shown = steps_view(run, [*iterations, after], now=T0)
    assert shown[2]["inputs"]["input_data"] == {"double": {"value": 1}}
