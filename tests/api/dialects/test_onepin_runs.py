"""Onepin's run and step endpoints against a real `stepline serve`: seed 002's example as a
contract, one entry per attempt, iterations, a running run, cancel, paging and the errors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from onepin_support import (
    BASE,
    chain,
    client,
    create,
    example,
    finished,
    reshape,
    start,
    wait_until,
)

from stepline.api.dialects.onepin import models as m
from support.http_server import LoopbackServer, loopback_server
from support.server import ServeProcess
from support.shapes import assert_same_shape

STEP_FIELDS_BEYOND_SEED = {
    # SHAPES.md's Onepin step fields that the seed's example does not show.
    "node_display_name": "Send",
    "has_result": True,
    "active_ports": ["default"],
}
RESULT = "$.data[0].result"


def seed_workflow() -> dict[str, Any]:
    """Seed 002's example: one action step whose result is an output and a count."""
    return {
        "name": "seed 002",
        "nodes": [
            reshape(
                "node-12345",
                {"output": "Step executed successfully", "recordsProcessed": 150},
                label="Send",
            )
        ],
    }


def test_steps_answer_in_seed_002s_shape(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "seed", seed_workflow())
        run_id = start(http, workflow_id)
        assert finished(http, workflow_id, run_id)["status"] == "completed"
        answer = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/steps?include_result=true")
    assert answer.status_code == 200, answer.text
    documented = example("steps")
    documented["data"][0].update(STEP_FIELDS_BEYOND_SEED)
    body = answer.json()
    assert_same_shape(body, documented, open_keys=frozenset({RESULT}))
    (step,) = body["data"]
    assert step["node_id"] == "node-12345"
    assert step["node_type"] == "reshape"
    assert step["node_display_name"] == "Send"
    assert step["status"] == "completed"
    assert step["iteration"] == 1
    assert step["result"] == {"output": "Step executed successfully", "recordsProcessed": 150}
    assert step["has_result"] is True
    assert step["active_ports"] == ["default"]
    assert step["started_at"].endswith("Z") and step["completed_at"].endswith("Z")
    assert uuid.UUID(step["id"])
    assert body["meta"]["timestamp"].endswith("Z")
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]


def test_run_reads_back_in_the_documented_run_shape(api_server: ServeProcess, org_key: str) -> None:
    a, b = reshape("a", 1), reshape("b", 2)
    with client(api_server, org_key) as http:
        workflow_id = create(http, "two", {"name": "two", "nodes": [a, b], "edges": chain(a, b)})
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        answer = http.get(f"{BASE}/{workflow_id}/runs/{run_id}")
    assert answer.status_code == 200
    assert_same_shape(answer.json(), example("run"))
    run = answer.json()["data"]
    assert run["status"] == "completed"
    assert run["total_nodes"] == 2 and run["finished_nodes"] == 2
    assert run["total_steps"] == 2 and run["finished_steps"] == 2
    assert run["run_number"] >= 1
    assert run["token_cost"] == 0


def test_include_result_false_leaves_result_out_but_says_there_is_one(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "seed", seed_workflow())
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        (step,) = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/steps").json()["data"]
    assert step["result"] is None and step["has_result"] is True


def test_node_type_and_node_id_filters_combine(api_server: ServeProcess, org_key: str) -> None:
    nodes = [reshape("a", 1), reshape("b", 2), {"id": "n", "type": "note", "config": {"text": "x"}}]
    with client(api_server, org_key) as http:
        workflow_id = create(http, "filters", {"name": "filters", "nodes": nodes})
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        steps = f"{BASE}/{workflow_id}/runs/{run_id}/steps"

        def ids(query: str) -> list[str]:
            answer = http.get(f"{steps}?{query}")
            assert answer.status_code == 200, answer.text
            return [s["node_id"] for s in answer.json()["data"]]

        assert sorted(ids("node_type=reshape")) == ["a", "b"]
        assert ids("node_type=reshape&node_id=b") == ["b"]
        assert ids("node_type=note&node_id=b") == []
        assert ids("node_id=n") == ["n"]
        bad = http.get(f"{steps}?node_type=action")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "query.node_type"


# --- one entry per attempt ---------------------------------------------------------------------


@pytest.fixture
def flaky() -> Iterator[LoopbackServer]:
    """/once fails with a 503 on its first hit, then answers."""

    def once(n: int, body: Any) -> tuple[int, dict[str, str], Any]:
        return (503, {}, {"error": "busy"}) if n == 1 else (200, {}, {"ok": True, "hit": n})

    with loopback_server({"/once": once}) as server:
        yield server


def test_a_retried_step_lists_one_entry_per_attempt(
    api_server: ServeProcess, org_key: str, flaky: LoopbackServer
) -> None:
    fetch = {
        "id": "fetch",
        "type": "api_call",
        "config": {"url": f"{flaky.url}/once"},
        "retry": {"max_attempts": 3, "initial_delay_s": 0, "jitter": False},
    }
    with client(api_server, org_key) as http:
        workflow_id = create(http, "flaky", {"name": "flaky", "nodes": [fetch]})
        run_id = start(http, workflow_id)
        assert finished(http, workflow_id, run_id)["status"] == "completed"
        answer = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/steps?include_result=true")
        again = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/steps")
    assert flaky.hit_count("/once") == 2
    first, second = answer.json()["data"]
    assert first["status"] == "failed" and "503" in first["error"]
    assert first["result"] is None and first["has_result"] is False
    assert first["completed_at"] is not None and first["completed_at"] <= second["started_at"]
    assert second["status"] == "completed" and second["error"] is None
    assert second["has_result"] is True
    assert second["result"]["body"] == {"ok": True, "hit": 2}, second["result"]
    assert first["id"] != second["id"]
    # The ids are stable: the same attempts have the same ids when read again.
    assert [s["id"] for s in again.json()["data"]] == [first["id"], second["id"]]


# --- loops -------------------------------------------------------------------------------------


def test_a_for_each_lists_each_iteration(api_server: ServeProcess, org_key: str) -> None:
    loop = {
        "id": "each",
        "type": "for_each",
        "config": {"items": ["x", "y", "z"], "concurrency": 1},
        "body": {"nodes": [reshape("double", "{{ loop.item }}{{ loop.item }}")]},
    }
    with client(api_server, org_key) as http:
        workflow_id = create(http, "loop", {"name": "loop", "nodes": [loop]})
        run_id = start(http, workflow_id)
        assert finished(http, workflow_id, run_id)["status"] == "completed"
        answer = http.get(
            f"{BASE}/{workflow_id}/runs/{run_id}/steps?node_id=double&include_result=true"
        )
    steps = answer.json()["data"]
    assert [s["iteration"] for s in steps] == [1, 2, 3]
    assert [s["result"] for s in steps] == [{"output": "xx"}, {"output": "yy"}, {"output": "zz"}]


# --- a run that is still going, and cancel -----------------------------------------------------


@pytest.fixture
def gate() -> Iterator[tuple[LoopbackServer, threading.Event]]:
    """/hold answers once the event is set (or the server stops)."""
    opened = threading.Event()

    def hold(n: int, body: Any) -> tuple[int, dict[str, str], Any]:
        opened.wait(60)
        return 200, {}, {"held": n}

    with loopback_server({"/hold": hold}) as server:
        yield server, opened
        opened.set()


def test_a_running_run_reads_back_with_running_and_pending_steps_then_cancels(
    api_server: ServeProcess, org_key: str, gate: tuple[LoopbackServer, threading.Event]
) -> None:
    server, _ = gate
    first = reshape("first", 1)
    held = {
        "id": "held",
        "type": "api_call",
        "timeout_s": 120,
        "config": {"url": f"{server.url}/hold", "timeout_s": 90},
    }
    after = reshape("after", 2)
    definition = {"name": "held", "nodes": [first, held, after], "edges": chain(first, held, after)}
    with client(api_server, org_key) as http:
        workflow_id = create(http, "held", definition)
        run_id = start(http, workflow_id)
        wait_until(http, workflow_id, run_id, {"running"})
        steps_url = f"{BASE}/{workflow_id}/runs/{run_id}/steps"
        statuses: dict[str, str] = {}
        for _ in range(200):
            statuses = {s["node_id"]: s["status"] for s in http.get(steps_url).json()["data"]}
            if statuses.get("held") == "running":
                break
            threading.Event().wait(0.05)
        assert statuses["first"] == "completed"
        assert statuses["held"] == "running"
        assert statuses["after"] == "pending"  # every step is on the record from the start
        run = http.get(f"{BASE}/{workflow_id}/runs/{run_id}").json()["data"]
        assert run["status"] == "running" and run["completed_at"] is None
        overview = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/overview").json()["data"]
        held_state = next(n for n in overview["node_states"] if n["node_id"] == "held")
        assert held_state["status"] == "running" and held_state["completed_at"] is None

        cancelled = http.post(f"{BASE}/{workflow_id}/runs/{run_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        ended = finished(http, workflow_id, run_id)
        assert ended["status"] == "cancelled"
        again = http.post(f"{BASE}/{workflow_id}/runs/{run_id}/cancel")
        assert again.status_code == 200
        assert again.json()["data"]["status"] == "cancelled"
        assert again.json()["data"]["completed_at"] == ended["completed_at"]


def test_cancelling_a_completed_run_leaves_it_unchanged(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "done", {"name": "done", "nodes": [reshape("a", 1)]})
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        before = http.get(f"{BASE}/{workflow_id}/runs/{run_id}").json()["data"]
        answer = http.post(f"{BASE}/{workflow_id}/runs/{run_id}/cancel")
    assert answer.status_code == 200
    assert answer.json()["data"] == before


# --- listing runs ------------------------------------------------------------------------------


def test_runs_page_newest_first_with_next_and_prev_urls(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "many", {"name": "many", "nodes": [reshape("a", 1)]})
        run_ids = [start(http, workflow_id) for _ in range(5)]
        for run_id in run_ids:
            finished(http, workflow_id, run_id)
        first = http.get(f"{BASE}/{workflow_id}/runs?limit=2").json()
        assert [r["id"] for r in first["data"]] == run_ids[::-1][:2]
        assert first["pagination"]["total"] == 5 and first["pagination"]["limit"] == 2
        assert first["pagination"]["prev"] is None
        second = http.get(first["pagination"]["next"]).json()
        assert [r["id"] for r in second["data"]] == run_ids[::-1][2:4]
        third = http.get(second["pagination"]["next"]).json()
        assert [r["id"] for r in third["data"]] == run_ids[::-1][4:]
        assert third["pagination"]["next"] is None
        back = http.get(third["pagination"]["prev"]).json()
        assert [r["id"] for r in back["data"]] == [r["id"] for r in second["data"]]
        assert first["pagination"]["next"].startswith(str(http.base_url).rstrip("/") + BASE)


def test_status_filter_takes_a_comma_separated_list(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "mixed", {"name": "mixed", "nodes": [reshape("a", 1)]})
        ok = start(http, workflow_id)
        finished(http, workflow_id, ok)
        runs = f"{BASE}/{workflow_id}/runs"
        assert [r["id"] for r in http.get(f"{runs}?status=completed").json()["data"]] == [ok]
        assert http.get(f"{runs}?status=failed,cancelled").json()["data"] == []
        both = http.get(f"{runs}?status=failed, completed").json()
        assert both["pagination"]["total"] == 1
        answer = http.get(f"{runs}?status=completed,done")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] == "query.status"
    assert "done" in error["details"][0]["message"]


def test_summary_counts_runs_by_status(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "sum", {"name": "sum", "nodes": [reshape("a", 1)]})
        for _ in range(2):
            finished(http, workflow_id, start(http, workflow_id))
        answer = http.get(f"{BASE}/{workflow_id}/runs/summary")
        future = http.get(f"{BASE}/{workflow_id}/runs/summary?from=2999-01-01T00:00:00Z")
        backwards = http.get(
            f"{BASE}/{workflow_id}/runs/summary?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z"
        )
    summary = answer.json()["data"]
    assert summary["total_runs"] == 2 and summary["completed"] == 2
    assert summary["failed"] == 0 and summary["paused"] == 0
    assert summary["pass_rate"] == 1.0
    assert isinstance(summary["average_duration_seconds"], float)
    assert future.status_code == 422  # from is after the default `to` (now)
    assert backwards.status_code == 422
    assert backwards.json()["error"]["details"][0]["field"] == "query.from"


def test_overview_and_data(api_server: ServeProcess, org_key: str) -> None:
    a = reshape("a", [{"n": 1}, {"n": 2}, 3], label="Rows")
    with client(api_server, org_key) as http:
        workflow_id = create(http, "rows", {"name": "rows", "nodes": [a]})
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        overview = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/overview").json()["data"]
        data = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/data?limit=2").json()
    (state,) = overview["node_states"]
    assert set(state) == {
        "node_id",
        "node_type",
        "node_display_name",
        "status",
        "iteration",
        "started_at",
        "completed_at",
        "duration_ms",
        "error",
    }
    assert state["node_display_name"] == "Rows" and state["status"] == "completed"
    assert isinstance(state["duration_ms"], int)
    assert overview["status"] == "completed"
    assert data["data"] == [{"n": 1}, {"n": 2}]
    assert data["pagination"]["total"] == 3


def test_preview_orders_the_nodes_and_runs_nothing(api_server: ServeProcess, org_key: str) -> None:
    c, a, b = reshape("c", 3), reshape("a", 1), reshape("b", 2)
    loop = {
        "id": "each",
        "type": "for_each",
        "config": {"items": [1, 2]},
        "body": {"nodes": [reshape("inner", "{{ loop.item }}")]},
    }
    definition = {
        "name": "order",
        "inputs": {"type": "object", "properties": {"x": {"type": "integer"}}},
        "nodes": [loop, c, a, b],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "each"}],
    }
    with client(api_server, org_key) as http:
        workflow_id = create(http, "order", definition)
        answer = http.post(f"{BASE}/{workflow_id}/runs/preview", json={"inputs": {"x": 1}})
        wrong = http.post(f"{BASE}/{workflow_id}/runs/preview", json={"inputs": {"x": "one"}})
        runs = http.get(f"{BASE}/{workflow_id}/runs").json()
    preview = answer.json()["data"]
    assert preview["valid"] is True and preview["errors"] == []
    assert [n["node_id"] for n in preview["nodes"]] == ["a", "b", "c", "each", "inner"]
    assert [n["parent_node_id"] for n in preview["nodes"]] == [None, None, None, None, "each"]
    assert [n["order"] for n in preview["nodes"]] == [1, 2, 3, 4, 5]
    assert wrong.json()["data"]["valid"] is False
    assert wrong.json()["data"]["errors"][0]["field"].startswith("body.inputs")
    assert runs["pagination"]["total"] == 0


# --- errors ------------------------------------------------------------------------------------


RUN_PATHS = ["", "/status", "/steps", "/overview", "/data"]


def test_malformed_uuids_are_422_in_every_path(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "ids", {"name": "ids", "nodes": [reshape("a", 1)]})
        good_run = str(uuid.uuid4())
        cases = [("get", f"{BASE}/not-a-uuid/runs", "path.workflow_id")]
        cases += [("post", f"{BASE}/not-a-uuid/runs", "path.workflow_id")]
        cases += [("get", f"{BASE}/12345/runs/summary", "path.workflow_id")]
        for tail in RUN_PATHS:
            cases.append(("get", f"{BASE}/{workflow_id}/runs/nope{tail}", "path.run_id"))
            cases.append(("get", f"{BASE}/nope/runs/{good_run}{tail}", "path.workflow_id"))
        cases.append(("post", f"{BASE}/{workflow_id}/runs/nope/cancel", "path.run_id"))
        cases.append(("get", f"{BASE}/{workflow_id}/runs/nope/download", "path.run_id"))
        cases.append(("get", f"{BASE}/{workflow_id}/runs/nope/nodes/a/download", "path.run_id"))
        cases.append(("get", f"{BASE}/nope/runs/{good_run}/export", "path.workflow_id"))
        for method in ("get", "put", "patch", "delete"):
            cases.append((method, f"{BASE}/nope", "path.workflow_id"))
        for tail in ("/duplicate", "/runs/preview"):
            cases.append(("post", f"{BASE}/nope{tail}", "path.workflow_id"))
        cases.append(("get", f"{BASE}/nope/uploads", "path.workflow_id"))
        body = {"name": "x", "definition": {"nodes": [reshape("a", 1)]}}
        for method, url, field in cases:
            sent = body if method in ("put", "patch") else None
            answer = http.request(method.upper(), url, json=sent)
            assert answer.status_code == 422, (url, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "VALIDATION_ERROR", url
            assert error["details"][0]["field"] == field, url
            assert set(answer.json()["meta"]) == {"request_id", "timestamp"}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "99999999999999999999999", "ten", ""])
def test_limits_out_of_range_are_422(api_server: ServeProcess, org_key: str, limit: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "limits", {"name": "limits", "nodes": [reshape("a", 1)]})
        for url in (f"{BASE}/{workflow_id}/runs", BASE):
            answer = http.get(url, params={"limit": limit})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["error"]["details"][0]["field"] == "query.limit"
        huge = http.get(f"{BASE}/{workflow_id}/runs", params={"offset": "9" * 30})
    assert huge.status_code == 422
    assert huge.json()["error"]["details"][0]["field"] == "query.offset"


def test_a_bad_key_is_401_invalid_api_key(api_server: ServeProcess) -> None:
    with client(api_server, "sl_not_a_key") as http:
        answer = http.get(f"{BASE}/{uuid.uuid4()}/runs")
        nobody = http.get(f"{BASE}", headers={"Authorization": ""})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "INVALID_API_KEY"
    assert set(answer.json()) == {"error", "meta"}
    assert nobody.status_code == 401
    assert nobody.json()["error"]["code"] == "INVALID_API_KEY"


def test_unknown_run_and_another_organizations_run_are_404(
    api_server: ServeProcess, org_key: str, make_key: Any
) -> None:
    other_key = make_key("org-onepin-other")
    with client(api_server, other_key) as other:
        theirs = create(other, "theirs", {"name": "theirs", "nodes": [reshape("a", 1)]})
        their_run = start(other, theirs)
        finished(other, theirs, their_run)
    with client(api_server, org_key) as http:
        mine = create(http, "mine", {"name": "mine", "nodes": [reshape("a", 1)]})
        unknown = http.get(f"{BASE}/{mine}/runs/{uuid.uuid4()}/steps")
        foreign = http.get(f"{BASE}/{theirs}/runs/{their_run}/steps")
        foreign_in_mine = http.get(f"{BASE}/{mine}/runs/{their_run}")
        cancel = http.post(f"{BASE}/{theirs}/runs/{their_run}/cancel")
        no_route = http.get("/onepin/api/v1/nothing-here")
        wrong_method = http.delete(f"{BASE}/{mine}/runs")
    for answer in (unknown, foreign, foreign_in_mine, cancel, no_route):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_a_start_with_an_unknown_field_or_bad_inputs_is_422(
    api_server: ServeProcess, org_key: str
) -> None:
    definition = {
        "name": "typed",
        "inputs": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        "nodes": [reshape("a", "{{ inputs.x }}")],
    }
    with client(api_server, org_key) as http:
        workflow_id = create(http, "typed", definition)
        extra = http.post(f"{BASE}/{workflow_id}/runs", json={"inputz": {}})
        missing = http.post(f"{BASE}/{workflow_id}/runs", json={"inputs": {}})
        garbage = http.post(
            f"{BASE}/{workflow_id}/runs",
            content=b"\xff\xfe{",
            headers={"content-type": "application/json"},
        )
    for answer in (extra, missing, garbage):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


# --- downloads ---------------------------------------------------------------------------------


def test_a_download_link_downloads_without_a_key_until_tampered(
    api_server: ServeProcess, org_key: str
) -> None:
    a, b = reshape("a", {"n": 1}), reshape("b", {"n": 2})
    with client(api_server, org_key) as http:
        workflow_id = create(http, "dl", {"name": "dl", "nodes": [a, b], "edges": chain(a, b)})
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        link = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/download")
        node_link = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/nodes/b/download")
        unknown_node = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/nodes/zz/download")
    assert link.status_code == 200, link.text
    data = link.json()["data"]
    assert set(data) == {"url", "filename", "expires_at"}
    assert data["filename"] == f"run-{run_id}.json" and data["expires_at"].endswith("Z")
    with httpx.Client(timeout=30) as anonymous:
        whole = anonymous.get(data["url"])
        assert whole.status_code == 200, whole.text
        assert "attachment" in whole.headers["content-disposition"]
        document = whole.json()
        assert document["run"]["id"] == run_id
        assert [s["node_id"] for s in document["steps"]] == ["a", "b"]
        assert document["steps"][1]["result"] == {"n": 2}
        part = anonymous.get(node_link.json()["data"]["url"]).json()
        assert [s["node_id"] for s in part["steps"]] == ["b"]
        tampered = anonymous.get(data["url"].replace("signature=", "signature=0"))
        widened = anonymous.get(node_link.json()["data"]["url"].replace("node_id=b", "node_id=a"))
    for refused in (tampered, widened):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "FORBIDDEN"
    assert unknown_node.status_code == 404


def test_a_download_of_a_run_that_did_not_complete_is_409(
    api_server: ServeProcess, org_key: str
) -> None:
    broken = {"id": "call", "type": "api_call", "config": {"url": "http://127.0.0.1:9/none"}}
    with client(api_server, org_key) as http:
        workflow_id = create(http, "broken", {"name": "broken", "nodes": [broken]})
        run_id = start(http, workflow_id)
        assert finished(http, workflow_id, run_id)["status"] == "failed"
        answer = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/download")
        node = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/nodes/call/download")
    for refused in (answer, node):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "CONFLICT"


def test_a_repeated_idempotency_key_answers_with_the_first_run(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "once", {"name": "once", "nodes": [reshape("a", 1)]})
        url = f"{BASE}/{workflow_id}/runs"
        first = http.post(url, json={}, headers={"Idempotency-Key": "k-1"})
        second = http.post(url, json={}, headers={"Idempotency-Key": "k-1"})
        total = http.get(url).json()["pagination"]["total"]
    assert first.status_code == second.status_code == 202
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert total == 1


def test_every_answer_matches_the_documented_model(api_server: ServeProcess, org_key: str) -> None:
    """What the OpenAPI document says (models.py) is what the routes send."""
    check = {
        "id": "check",
        "type": "conditional",
        "config": {"branches": [{"name": "yes", "when": "true"}]},
    }
    yes = reshape("yes", [{"row": 1}])
    definition = {
        "name": "documented",
        "nodes": [check, yes],
        "edges": [{"from": "check", "to": "yes", "handle": "yes"}],
    }
    with client(api_server, org_key) as http:
        workflow_id = create(http, "documented", definition)
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        runs = f"{BASE}/{workflow_id}/runs"
        one = f"{runs}/{run_id}"
        answers: list[tuple[Any, httpx.Response]] = [
            (m.ListEnvelope[m.Workflow], http.get(BASE)),
            (m.Envelope[m.Workflow], http.get(f"{BASE}/{workflow_id}")),
            (m.ListEnvelope[m.Upload], http.get(f"{BASE}/{workflow_id}/uploads")),
            (m.ListEnvelope[m.Run], http.get(runs)),
            (m.Envelope[m.RunsSummary], http.get(f"{runs}/summary")),
            (m.Envelope[m.RunPreview], http.post(f"{runs}/preview", json={})),
            (m.Envelope[m.Run], http.get(one)),
            (m.Envelope[m.RunLight], http.get(f"{one}/status")),
            (m.Envelope[list[m.Step]], http.get(f"{one}/steps?include_result=true")),
            (m.Envelope[m.RunOverview], http.get(f"{one}/overview")),
            (m.ListEnvelope[dict[str, Any]], http.get(f"{one}/data")),
            (m.Envelope[m.Run], http.post(f"{one}/cancel")),
            (m.Envelope[m.DownloadLink], http.get(f"{one}/download")),
            (m.Envelope[m.DownloadLink], http.get(f"{one}/nodes/yes/download")),
        ]
        link = answers[-1][1].json()["data"]["url"]
        answers.append((m.Export, httpx.get(link, timeout=30)))
    for model, answer in answers:
        assert answer.status_code == 200, (answer.request.url, answer.text)
        model.model_validate(answer.json())
    steps = answers[8][1].json()["data"]
    assert [s["active_ports"] for s in steps] == [["yes"], ["default"]]
