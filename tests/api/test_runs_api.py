"""Runs, steps and events over HTTP against a real `stepline serve` (SQLite, embedded worker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.sandbox import host_pids, new_marker
from support.server import ServeProcess
from support.server import make_key as mint_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WIDE_NODES = 2500
IO_KEYS = {"inputs", "outputs", "handle_inputs", "handle_outputs"}
FINISHED = {"completed", "failed", "cancelled"}

SLOW = """
import subprocess, time

def main(inputs):
    subprocess.Popen(["sleep", inputs["marker"]])  # found on the host by this marker
    time.sleep(60)
    return "never"
"""


# --- helpers ---------------------------------------------------------------------------------


def client(server: ServeProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def order_triage() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "order-triage.yaml").read_text())


def slow_workflow(name: str = "slow") -> dict[str, Any]:
    """first -> slow (a code step that starts `sleep <marker>`, then sleeps 60 s) -> after."""
    return {
        "name": name,
        "inputs": {
            "type": "object",
            "properties": {"marker": {"type": "string"}},
            "required": ["marker"],
        },
        "nodes": [
            {"id": "first", "type": "reshape", "config": {"output": 1}},
            {
                "id": "slow",
                "type": "code",
                "timeout_s": 120,
                "config": {"inputs": {"marker": "{{ inputs.marker }}"}, "code": SLOW},
            },
            {"id": "after", "type": "reshape", "config": {"output": 2}},
        ],
        "edges": [{"from": "first", "to": "slow"}, {"from": "slow", "to": "after"}],
    }


def wide_workflow() -> dict[str, Any]:
    """2,500 independent nodes, alternately note and reshape: a run of 2,500 steps."""
    nodes = [
        {"id": f"n{i:04d}", "type": "note", "config": {"text": f"note {i}"}}
        if i % 2
        else {"id": f"n{i:04d}", "type": "reshape", "config": {"output": {"i": i}}}
        for i in range(WIDE_NODES)
    ]
    return {"name": "wide", "nodes": nodes}


def create_workflow(http: httpx.Client, definition: dict[str, Any]) -> str:
    response = http.post("/v1/workflows", json=definition)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


def runs_url(workflow_id: str) -> str:
    return f"/v1/workflows/{workflow_id}/runs"


def start(http: httpx.Client, workflow_id: str, inputs: dict[str, Any], **kw: Any) -> Any:
    response = http.post(runs_url(workflow_id), json={"inputs": inputs}, **kw)
    assert response.status_code in (200, 202), response.text
    return response.json()


def wait_for(
    http: httpx.Client, workflow_id: str, run_id: str, test: Callable[[Any], bool], timeout_s: float
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        run = http.get(f"{runs_url(workflow_id)}/{run_id}").json()
        if test(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
        time.sleep(0.05)


def finished_run(http: httpx.Client, workflow_id: str, run_id: str) -> Any:
    return wait_for(http, workflow_id, run_id, lambda r: r["status"] in FINISHED, 60)


def error_fields(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


def sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an SSE response, as {"id", "event", "data"}; comments are skipped."""
    frame: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            parse = {"id": int, "data": json.loads}.get(name, str)
            frame[name] = parse(value)
    if frame:
        yield frame


def read_events(http: httpx.Client, url: str, **kw: Any) -> list[dict[str, Any]]:
    with http.stream("GET", url, **kw) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse(response))


@pytest.fixture
def http(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    with client(api_server, org_key) as http:
        yield http


# --- starting and reading runs ----------------------------------------------------------------


def test_a_started_run_is_queued_then_completes_with_its_data(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    response = http.post(runs_url(workflow_id), json={"inputs": {"amount": 700, "customer": "Ada"}})
    assert response.status_code == 202
    queued = response.json()
    assert queued["workflow_id"] == workflow_id and queued["workflow_version"] == 1
    assert queued["trigger"] == "api" and queued["inputs"] == {"amount": 700, "customer": "Ada"}
    assert response.headers["Location"] == f"{runs_url(workflow_id)}/{queued['id']}"
    assert "Idempotent-Replayed" not in response.headers

    run = finished_run(http, workflow_id, queued["id"])
    assert run["status"] == "completed"
    assert run["output"] == {"message": "Review Ada: risk 0.7"}
    assert run["step_counts"] == {"completed": 4, "skipped": 1}
    assert run["total_steps"] == 5 and run["finished_steps"] == 5
    assert run["duration_ms"] is not None

    data = http.get(f"{runs_url(workflow_id)}/{run['id']}/data").json()
    assert data == {
        "run_id": run["id"],
        "status": "completed",
        "output": {"message": "Review Ada: risk 0.7"},
        "end_nodes": {"report": {"message": "Review Ada: risk 0.7"}},
    }


def test_wait_returns_the_finished_run_with_its_steps(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    response = http.post(
        runs_url(workflow_id),
        params={"wait": "true", "timeout_s": 30},
        json={"inputs": {"amount": 100, "customer": "Bo"}},
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed" and run["output"] == {"message": "Approved Bo"}
    steps = {s["step_id"]: s for s in run["steps"]}
    assert set(steps) == {"score", "route", "flag", "approve", "report"}
    assert steps["flag"]["status"] == "skipped"
    assert steps["score"]["outputs"] == {"risk": 0.1}


def test_wait_gives_up_with_202_while_the_run_goes_on(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, slow_workflow())
    started = time.monotonic()
    response = http.post(
        runs_url(workflow_id),
        params={"wait": "true", "timeout_s": 1},
        json={"inputs": {"marker": new_marker()}},
    )
    assert response.status_code == 202, response.text
    assert 0.9 < time.monotonic() - started < 10
    run = response.json()
    assert run["status"] in ("queued", "running") and run["steps"] is None
    cancelled = http.post(f"{runs_url(workflow_id)}/{run['id']}/cancel")
    assert cancelled.status_code == 202
    assert finished_run(http, workflow_id, run["id"])["status"] == "cancelled"


def test_an_idempotency_key_returns_the_first_run(
    http: httpx.Client, api_server: ServeProcess, make_key: Callable[..., str]
) -> None:
    workflow_id = create_workflow(http, order_triage())
    inputs = {"inputs": {"amount": 5, "customer": "Cy"}}
    first = http.post(runs_url(workflow_id), json=inputs, headers={"Idempotency-Key": "order-1"})
    again = http.post(runs_url(workflow_id), json=inputs, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["idempotency_key"] == "order-1"
    waited = http.post(
        runs_url(workflow_id),
        params={"wait": "true"},
        json=inputs,
        headers={"Idempotency-Key": "order-1"},
    )
    assert waited.status_code == 200 and waited.json()["id"] == first.json()["id"]
    other = http.post(runs_url(workflow_id), json=inputs, headers={"Idempotency-Key": "order-2"})
    assert other.json()["id"] != first.json()["id"]
    listed = http.get(runs_url(workflow_id)).json()["data"]
    assert len(listed) == 2

    # The same key for another workflow of the organization is a conflict...
    second_wf = create_workflow(http, {**order_triage(), "name": "order-triage-2"})
    clash = http.post(runs_url(second_wf), json=inputs, headers={"Idempotency-Key": "order-1"})
    assert clash.status_code == 409
    assert error_fields(clash) == ["header.Idempotency-Key"]
    # ...while another organization's keys are its own.
    with client(api_server, make_key("runs-idempotency-other-org")) as stranger:
        theirs = create_workflow(stranger, order_triage())
        run = stranger.post(runs_url(theirs), json=inputs, headers={"Idempotency-Key": "order-1"})
        assert run.status_code == 202 and "Idempotent-Replayed" not in run.headers


def test_bad_inputs_are_a_422_naming_each_field(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    response = http.post(runs_url(workflow_id), json={"inputs": {"amount": "lots"}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert sorted(error_fields(response)) == ["body.inputs.amount", "body.inputs.customer"]
    assert http.get(runs_url(workflow_id)).json()["data"] == []  # nothing was queued

    not_an_object = http.post(runs_url(workflow_id), json={"inputs": [1, 2]})
    assert not_an_object.status_code == 422
    assert error_fields(not_an_object) == ["body.inputs"]
    too_long = http.post(
        runs_url(workflow_id),
        params={"wait": "true", "timeout_s": 301},
        json={"inputs": {"amount": 1, "customer": "x"}},
    )
    assert too_long.status_code == 422 and error_fields(too_long) == ["query.timeout_s"]


def test_runs_of_other_organizations_workflows_or_workspaces_are_not_found(
    http: httpx.Client, api_server: ServeProcess, make_key: Callable[..., str]
) -> None:
    workflow_id = create_workflow(http, order_triage())
    other_wf = create_workflow(http, {**order_triage(), "name": "elsewhere"})
    run = start(http, workflow_id, {"amount": 1, "customer": "x"})
    finished_run(http, workflow_id, run["id"])
    run_url = f"{runs_url(workflow_id)}/{run['id']}"
    paths = ["", "/data", "/steps", "/steps/score", "/download", "/events", "/nodes/score/download"]

    for path in paths:
        wrong_workflow = http.get(f"{runs_url(other_wf)}/{run['id']}{path}")
        assert wrong_workflow.status_code == 404, path
    assert http.post(f"{runs_url(other_wf)}/{run['id']}/cancel").status_code == 404
    unknown = http.get(f"{runs_url(workflow_id)}/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"

    with client(api_server, make_key("runs-404-other-org")) as stranger:
        for path in paths:
            assert stranger.get(run_url + path).status_code == 404, path
        assert stranger.post(run_url + "/cancel").status_code == 404
        assert stranger.get(runs_url(workflow_id)).status_code == 404
        assert stranger.post(runs_url(workflow_id), json={"inputs": {}}).status_code == 404

    workspace = "5b0e3f7c-1111-4222-8333-944455556666"
    in_workspace = http.get(run_url, headers={"X-Workspace-Id": workspace})
    assert in_workspace.status_code == 404


def test_malformed_ids_and_cursors_are_422(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    run = start(http, workflow_id, {"amount": 1, "customer": "x"})
    bad_run = http.get(f"{runs_url(workflow_id)}/not-a-uuid")
    assert bad_run.status_code == 422 and error_fields(bad_run) == ["path.run_id"]
    bad_cursor = http.get(runs_url(workflow_id), params={"after": "garbage"})
    assert bad_cursor.status_code == 422 and error_fields(bad_cursor) == ["query.after"]
    steps_url = f"{runs_url(workflow_id)}/{run['id']}/steps"
    bad_before = http.get(steps_url, params={"before": "eyJvIjoicnVucyJ9"})
    assert bad_before.status_code == 422 and error_fields(bad_before) == ["query.before"]
    both = http.get(steps_url, params={"after": "a", "before": "b"})
    assert both.status_code == 422
    assert http.get(steps_url, params={"limit": 1001}).status_code == 422
    assert http.get(steps_url, params={"status": "sleeping"}).status_code == 422
    naive = http.get(runs_url(workflow_id), params={"created_from": "2024-01-01T00:00:00"})
    assert naive.status_code == 422 and error_fields(naive) == ["query.created_from"]
    events = http.get(f"{runs_url(workflow_id)}/{run['id']}/events", headers={"Last-Event-ID": "x"})
    assert events.status_code == 422 and error_fields(events) == ["header.Last-Event-ID"]


def test_a_read_key_reads_but_cannot_start_or_cancel(
    http: httpx.Client,
    api_server: ServeProcess,
    make_key: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    workflow_id = create_workflow(http, order_triage())
    run = start(http, workflow_id, {"amount": 1, "customer": "x"})
    # The organization of `http` (org_key's, named after the test), with only `read`.
    reader_key = make_key(f"org-{request.node.name}", ["read"])
    with client(api_server, reader_key) as reader:
        assert reader.get(f"{runs_url(workflow_id)}/{run['id']}").status_code == 200
        refused = reader.post(runs_url(workflow_id), json={"inputs": {}})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert reader.post(f"{runs_url(workflow_id)}/{run['id']}/cancel").status_code == 403
    with client(api_server, make_key("runs-run-scope", ["run"])) as runner:
        assert runner.get(runs_url(workflow_id)).status_code == 404  # another organization


# --- listing and summarising runs --------------------------------------------------------------


def test_run_list_pages_newest_first_and_filters(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    before_all = datetime.now(UTC)
    ids = [start(http, workflow_id, {"amount": i, "customer": "x"})["id"] for i in range(7)]
    boom = {"code": "def main(inputs):\n    raise ValueError('no')\n"}
    bad = create_workflow(
        http, {"name": "failing", "nodes": [{"id": "boom", "type": "code", "config": boom}]}
    )
    failed = start(http, bad, {})
    for run_id in ids:
        finished_run(http, workflow_id, run_id)
    assert finished_run(http, bad, failed["id"])["status"] == "failed"

    newest_first = list(reversed(ids))
    seen: list[str] = []
    page = http.get(runs_url(workflow_id), params={"limit": 3}).json()
    assert page["prev_cursor"] is None
    while True:
        seen += [r["id"] for r in page["data"]]
        if page["next_cursor"] is None:
            break
        page = http.get(runs_url(workflow_id), params={"limit": 3, "after": page["next_cursor"]})
        page = page.json()
    assert seen == newest_first
    back = [r["id"] for r in page["data"]]
    while page["prev_cursor"] is not None:
        page = http.get(runs_url(workflow_id), params={"limit": 3, "before": page["prev_cursor"]})
        page = page.json()
        back = [r["id"] for r in page["data"]] + back
    assert back == newest_first
    first = http.get(runs_url(workflow_id), params={"limit": 1}).json()["data"][0]
    assert first["total_steps"] == 5 and first["step_counts"]["completed"] == 4

    def listed(workflow: str, **params: Any) -> list[str]:
        return [r["id"] for r in http.get(runs_url(workflow), params=params).json()["data"]]

    assert listed(workflow_id, status="completed") == newest_first
    assert listed(workflow_id, status="failed") == []
    assert listed(bad, status="failed") == [failed["id"]]
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert listed(workflow_id, created_from=later) == []
    assert listed(workflow_id, created_to=later) == newest_first
    assert listed(workflow_id, created_to=before_all.isoformat()) == []


def test_summary_counts_and_rates_over_the_window(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, {**order_triage(), "name": "summarised"})
    runs = [start(http, workflow_id, {"amount": i, "customer": "x"})["id"] for i in range(4)]
    for run_id in runs:
        finished_run(http, workflow_id, run_id)
    summary = http.get(f"{runs_url(workflow_id)}/summary").json()
    assert summary["total"] == 4
    assert summary["counts"]["completed"] == 4 and summary["counts"]["failed"] == 0
    assert summary["success_rate"] == 1.0
    assert isinstance(summary["p50_duration_ms"], int)
    assert summary["p95_duration_ms"] >= summary["p50_duration_ms"]
    assert summary["total_tokens"] == 0
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    older = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    empty = http.get(f"{runs_url(workflow_id)}/summary", params={"since": old, "until": older})
    assert empty.json()["total"] == 0 and empty.json()["success_rate"] is None
    backwards = http.get(f"{runs_url(workflow_id)}/summary", params={"since": older, "until": old})
    assert backwards.status_code == 422 and error_fields(backwards) == ["query.since"]


# --- steps of a 2,500-step run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_run(api_server: ServeProcess) -> tuple[str, str, str]:
    """(key, workflow id, run id) of a finished run of 2,500 steps."""
    key = mint_key(api_server.database_url, "runs-api-wide", ["admin"])
    with client(api_server, key) as http:
        workflow_id = create_workflow(http, wide_workflow())
        run = start(http, workflow_id, {})
        finished = wait_for(http, workflow_id, run["id"], lambda r: r["status"] in FINISHED, 120)
        assert finished["status"] == "completed", finished
        assert finished["total_steps"] == WIDE_NODES
    return key, workflow_id, run["id"]


@pytest.fixture
def wide(api_server: ServeProcess, wide_run: tuple[str, str, str]) -> Iterator[Any]:
    key, workflow_id, run_id = wide_run
    with client(api_server, key) as http:
        yield http, f"{runs_url(workflow_id)}/{run_id}"


EXPECTED_ORDER = [f"n{i:04d}" for i in range(WIDE_NODES)]


@pytest.mark.parametrize("limit", [1000, 333])
def test_steps_paginate_2500_without_gaps_or_repeats_both_ways(wide: Any, limit: int) -> None:
    http, run_url = wide
    seen: list[str] = []
    pages = 0
    page = http.get(f"{run_url}/steps", params={"limit": limit}).json()
    assert page["prev_cursor"] is None
    while True:
        pages += 1
        assert len(page["data"]) <= limit
        seen += [s["step_id"] for s in page["data"]]
        if page["next_cursor"] is None:
            break
        page = http.get(f"{run_url}/steps", params={"limit": limit, "after": page["next_cursor"]})
        page = page.json()
    assert seen == EXPECTED_ORDER  # execution order; every step once
    assert pages == -(-WIDE_NODES // limit)

    back: list[str] = [s["step_id"] for s in page["data"]]
    while page["prev_cursor"] is not None:
        page = http.get(f"{run_url}/steps", params={"limit": limit, "before": page["prev_cursor"]})
        page = page.json()
        back = [s["step_id"] for s in page["data"]] + back
    assert back == EXPECTED_ORDER


def test_steps_without_io_omit_the_payload_keys(wide: Any) -> None:
    http, run_url = wide
    full = http.get(f"{run_url}/steps", params={"limit": 2}).json()["data"]
    bare = http.get(f"{run_url}/steps", params={"limit": 2, "include_io": "false"}).json()["data"]
    assert full[0]["outputs"] == {"i": 0} and IO_KEYS <= set(full[0])
    for step in bare:
        assert not IO_KEYS & set(step)
    assert [{k: v for k, v in s.items() if k not in IO_KEYS} for s in full] == bare


def test_step_filters_combine(wide: Any) -> None:
    http, run_url = wide

    def step_ids(**params: Any) -> list[str]:
        body = http.get(f"{run_url}/steps", params={"limit": 1000, **params}).json()
        return [s["step_id"] for s in body["data"]]

    assert step_ids(node_id="n0042") == ["n0042"]
    notes = step_ids(node_type="note")
    assert len(notes) == 1000 and notes[0] == "n0001"  # a page of the 1,250 notes
    assert step_ids(node_type="note", node_id="n0042") == []
    assert step_ids(node_type="reshape", node_id="n0042", status="completed") == ["n0042"]
    assert step_ids(status="error") == []
    assert step_ids(loop_id="items") == []
    assert step_ids(iteration=0) == []


def test_one_step_by_record_id_or_step_id(wide: Any) -> None:
    http, run_url = wide
    by_name = http.get(f"{run_url}/steps/n0007")
    assert by_name.status_code == 200
    step = by_name.json()
    assert step["node_type"] == "note" and step["status"] == "completed"
    assert http.get(f"{run_url}/steps/{step['id']}").json() == step
    assert http.get(f"{run_url}/steps/nope").status_code == 404
    assert http.get(f"{run_url}/steps/00000000-0000-4000-8000-000000000000").status_code == 404


def test_download_streams_the_run_version_and_every_step(wide: Any) -> None:
    http, run_url = wide
    response = http.get(f"{run_url}/download")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["run"]["id"] == run_url.rsplit("/", 1)[1]
    assert document["run"]["total_steps"] == WIDE_NODES
    assert document["workflow_version"]["version"] == 1
    assert len(document["workflow_version"]["definition"]["nodes"]) == WIDE_NODES
    assert [s["step_id"] for s in document["steps"]] == EXPECTED_ORDER
    assert document["steps"][2]["outputs"] == {"i": 2}

    ndjson = http.get(f"{run_url}/download", params={"format": "ndjson"})
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert ndjson.headers["X-Run-Status"] == "completed"
    lines = ndjson.text.splitlines()
    assert [json.loads(line)["step_id"] for line in lines] == EXPECTED_ORDER


def test_node_download_holds_every_step_of_that_node(wide: Any) -> None:
    http, run_url = wide
    steps = http.get(f"{run_url}/nodes/n0010/download").json()
    assert [(s["step_id"], s["outputs"]) for s in steps] == [("n0010", {"i": 10})]
    lines = http.get(f"{run_url}/nodes/n0011/download", params={"format": "ndjson"}).text
    assert [json.loads(line)["node_id"] for line in lines.splitlines()] == ["n0011"]
    missing = http.get(f"{run_url}/nodes/nowhere/download")
    assert missing.status_code == 404


# --- events ------------------------------------------------------------------------------------


def test_events_replay_in_order_and_resume_after_an_id(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    run = start(http, workflow_id, {"amount": 700, "customer": "Ada"})
    events_url = f"{runs_url(workflow_id)}/{run['id']}/events"
    events = read_events(http, events_url)  # follows the run live, then ends

    types = [e["event"] for e in events]
    assert types[0] == "run.queued" and types[1] == "run.running"
    assert types[-1] == "run.completed" and types.count("run.completed") == 1
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for event in events:
        assert event["data"]["id"] == event["id"] and event["data"]["type"] == event["event"]
        assert event["data"]["run_id"] == run["id"]
    per_step: dict[str, list[str]] = {}
    for event in events:
        if event["event"].startswith("step."):
            per_step.setdefault(event["data"]["data"]["step_id"], []).append(event["event"])
    assert per_step["score"] == ["step.running", "step.completed"]
    assert per_step["approve"] == ["step.skipped"]

    middle = events[3]["id"]
    resumed = read_events(http, events_url, headers={"Last-Event-ID": str(middle)})
    assert resumed == events[4:]
    by_query = read_events(http, events_url, params={"last_event_id": middle})
    assert by_query == events[4:]
    assert read_events(http, events_url, headers={"Last-Event-ID": str(ids[-1])}) == []


# --- cancel ------------------------------------------------------------------------------------


def test_cancelling_a_running_run_stops_it_and_kills_its_code(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, slow_workflow())
    marker = new_marker()
    run = start(http, workflow_id, {"marker": marker})
    run_url = f"{runs_url(workflow_id)}/{run['id']}"
    deadline = time.monotonic() + 20
    while not host_pids(marker):
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.02)
    with http.stream("GET", f"{run_url}/events") as stream:
        requested = time.monotonic()
        response = http.post(f"{run_url}/cancel")
        assert response.status_code == 202
        assert response.json()["cancel_requested_at"] is not None
        events = list(sse(stream))  # the live stream ends with the cancel
        elapsed = time.monotonic() - requested
    assert events[-1]["event"] == "run.cancelled"
    assert elapsed < 1.5, f"the run took {elapsed:.2f} s to stop"

    stopped = http.get(run_url).json()
    assert stopped["status"] == "cancelled" and stopped["finished_steps"] == 3
    steps = {s["step_id"]: s for s in http.get(f"{run_url}/steps").json()["data"]}
    assert steps["first"]["status"] == "completed"
    assert steps["slow"]["status"] == "cancelled"
    assert steps["slow"]["status_reason"] == "run cancelled"
    assert steps["after"]["status"] == "cancelled"
    deadline = time.monotonic() + 3
    while host_pids(marker):
        assert time.monotonic() < deadline, "the code outlived the cancel"
        time.sleep(0.02)

    again = http.post(f"{run_url}/cancel")  # idempotent
    assert again.status_code == 202
    assert again.json()["status"] == "cancelled"
    assert again.json()["completed_at"] == stopped["completed_at"]


def test_cancelling_a_finished_run_changes_nothing(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, order_triage())
    run = start(http, workflow_id, {"amount": 1, "customer": "x"}, params={"wait": "true"})
    assert run["status"] == "completed"
    response = http.post(f"{runs_url(workflow_id)}/{run['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "completed"
    assert response.json()["cancel_requested_at"] is None
