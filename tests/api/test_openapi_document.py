"""The OpenAPI document of a real `stepline serve` tells the truth: every operation lists
the errors the machinery around it can answer, all in the one envelope, and every event
of a run's SSE stream matches the schema the document gives it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from control_support import client, create_workflow, edge, node, review_url, settled, start

from stepline.api.dialects import DIALECTS
from support.server import ServeProcess

ENVELOPE = "#/components/schemas/ErrorEnvelope"
DIALECT_PREFIXES = tuple(f"{dialect.PREFIX}/" for dialect in DIALECTS)


@pytest.fixture(scope="module")
def document(api_server: ServeProcess) -> dict[str, Any]:
    response = httpx.get(f"{api_server.base_url}/openapi.json")
    assert response.status_code == 200
    loaded: dict[str, Any] = response.json()
    return loaded


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_lists_the_errors_around_it_in_the_envelope(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document):
        if name.split(" ", 1)[1].startswith(DIALECT_PREFIXES):
            continue  # in its vendor's envelope: the next test
        responses = operation["responses"]
        expected = {"500"}
        if operation.get("security"):
            expected |= {"401", "403", "422"}
        if operation.get("parameters"):
            expected.add("422")
        if "requestBody" in operation:
            expected |= {"400", "413", "422"}
        assert expected <= set(responses), f"{name} lacks {expected - set(responses)}"
        for status, response in responses.items():
            assert "X-Request-Id" in response["headers"], f"{name} {status}"
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ENVELOPE}, f"{name} {status}: {schema}"
    text = json.dumps(document)
    assert "HTTPValidationError" not in text, "FastAPI's 422 shape is never sent"


def test_a_dialects_operations_list_their_errors_in_the_vendors_envelope(
    document: dict[str, Any],
) -> None:
    found: Counter[str] = Counter()
    for name, operation in operations(document):
        if not name.split(" ", 1)[1].startswith(DIALECT_PREFIXES):
            continue
        found["/" + name.split(" ", 1)[1].split("/")[1]] += 1
        responses = operation["responses"]
        assert {"401", "500"} <= set(responses), name
        errors = {
            json.dumps(response["content"]["application/json"]["schema"])
            for status, response in responses.items()
            if int(status) >= 400
        }
        assert len(errors) == 1 and ENVELOPE not in next(iter(errors)), f"{name}: {errors}"
        assert all("X-Request-Id" in response["headers"] for response in responses.values())
    # Every dialect's operations are in the document (and so were checked above).
    assert found.keys() == {dialect.PREFIX for dialect in DIALECTS}, found


def test_the_workspace_header_is_a_documented_parameter(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        if operation.get("security"):
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert "X-Workspace-Id" in headers, name


# --- the SSE events ------------------------------------------------------------------------


def event_validator(document: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of one event's `data`, as the document's itemSchema says."""
    events = document["paths"]["/v1/workflows/{workflow_id}/runs/{run_id}/events"]["get"]
    item = events["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
    data_schema = item["properties"]["data"]
    assert data_schema["contentMediaType"] == "application/json"
    schema = {**data_schema["contentSchema"], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def raw_events(http: httpx.Client, url: str) -> list[dict[str, str]]:
    """The stream's events, each field as the text on the wire."""
    events: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        for line in [*response.iter_lines(), ""]:
            if not line:
                if frame:
                    events.append(frame)
                frame = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                frame[name] = value
    return events


def failing_loop() -> dict[str, Any]:
    """A loop whose body reshapes and calls a closed port: loop steps, then an error."""
    body = {
        "nodes": [
            node("double", "reshape", {"output": "{{ loop.item * 2 }}"}),
            node("call", "api_call", {"url": "http://127.0.0.1:1/", "timeout_s": 2}),
        ],
        "edges": [edge("double", "call")],
    }
    return {
        "name": "events-failing-loop",
        "nodes": [
            node("route", "conditional", {"branches": [{"name": "never", "when": "false"}]}),
            node("skipped", "reshape", {"output": 1}),
            node("each", "for_each", {"items": [1, 2]}, body=body),
        ],
        "edges": [edge("route", "skipped", "never"), edge("route", "each", "else")],
    }


def reviewed() -> dict[str, Any]:
    return {
        "name": "events-reviewed",
        "nodes": [
            node("draft", "reshape", {"output": {"text": "draft"}}),
            node("check", "hil", {"payload": "{{ nodes.draft.output }}"}),
        ],
        "edges": [edge("draft", "check")],
    }


def test_every_event_of_every_kind_of_run_matches_the_documented_schema(
    api_server: ServeProcess, org_key: str, document: dict[str, Any]
) -> None:
    validator = event_validator(document)
    seen: set[str] = set()
    with client(api_server, org_key) as http:
        failing_id = create_workflow(http, failing_loop())
        failed = settled(http, failing_id, start(http, failing_id)["id"])
        assert failed["status"] == "failed"
        retried = http.post(f"/v1/workflows/{failing_id}/runs/{failed['id']}/retry")
        assert retried.status_code == 202
        replayed = http.post(
            f"/v1/workflows/{failing_id}/runs/{failed['id']}/replay", json={"from_node": "each"}
        )
        assert replayed.status_code == 201
        reviewed_id = create_workflow(http, reviewed())
        approved = start(http, reviewed_id)
        settled(http, reviewed_id, approved["id"])
        decision = http.post(
            review_url(reviewed_id, approved["id"], "check"), json={"approved": True}
        )
        assert decision.status_code == 200
        cancelled = start(http, reviewed_id)
        settled(http, reviewed_id, cancelled["id"])
        assert http.post(f"/v1/workflows/{reviewed_id}/runs/{cancelled['id']}/cancel").is_success

        runs = [
            (failing_id, failed["id"]),
            (failing_id, replayed.json()["id"]),
            (reviewed_id, approved["id"]),
            (reviewed_id, cancelled["id"]),
        ]
        for workflow_id, run_id in runs:
            settled_run = settled(http, workflow_id, run_id)
            assert settled_run["status"] in ("completed", "failed", "cancelled")
            for event in raw_events(http, f"/v1/workflows/{workflow_id}/runs/{run_id}/events"):
                data = json.loads(event["data"])
                errors = [e.message for e in validator.iter_errors(data)]
                assert not errors, f"{event['event']}: {errors}\n{data}"
                assert event["id"] == str(data["id"]) and event["event"] == data["type"]
                seen.add(data["type"])
    assert {
        "run.queued",
        "run.running",
        "run.waiting_for_human",
        "run.completed",
        "run.failed",
        "run.cancelled",
        "step.running",
        "step.completed",
        "step.skipped",
        "step.error",
        "step.waiting_for_human",
        "step.cancelled",
    } <= seen


def test_the_schema_refuses_what_is_not_an_event(document: dict[str, Any]) -> None:
    """The schema is no `{}`: a step event without its step, or of no known type, fails."""
    validator = event_validator(document)
    step_event = {
        "id": 3,
        "run_id": "6f1c44b0-3e0b-4b43-9f0e-3f3a4c1d2e10",
        "type": "step.completed",
        "step_id": "0b7e9d2c-5f3a-4d8e-9a1b-2c3d4e5f6a7b",
        "data": {
            "step_id": "a",
            "node_id": "a",
            "status": "completed",
            "status_reason": None,
            "iteration": None,
            "loop_id": None,
            "started_at": "2026-01-02T03:04:05Z",
            "completed_at": "2026-01-02T03:04:06Z",
            "error": None,
        },
        "created_at": "2026-01-02T03:04:06Z",
    }
    assert validator.is_valid(step_event)
    assert not validator.is_valid({**step_event, "step_id": None})
    assert not validator.is_valid({**step_event, "type": "step.exploded"})
    assert not validator.is_valid({**step_event, "data": {"status": "completed"}})
