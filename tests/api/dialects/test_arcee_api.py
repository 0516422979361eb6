"""Arcee Orchestra's API under /arcee on a real `stepline serve`: execute, then read the run
back (one run, the execution history, the steps), a run still going with its running and
pending steps, the workflow list and diagram, bearer auth, 404s in Arcee's
`{"detail": ...}` body, malformed ids and hostile paging values."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from support.server import ServeProcess, start_server
from support.workflows import edge, hil_workflow, node

RUN_KEYS = {
    "id",
    "status",
    "start_time",
    "end_time",
    "elapsed_time",
    "error",
    "outputs",
    "all_outputs",
    "inputs",
}
STEP_KEYS = {
    "id",
    "user_id",
    "organization_id",
    "node_id",
    "status",
    "start_time",
    "end_time",
    "elapsed_time",
    "error",
    "outputs",
    "inputs",
    "step_metadata",
    "tokens",
}
ARCEE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

GREETING: dict[str, Any] = {
    "name": "arcee-greeting",
    "description": 'Says "hi" | then <shouts>',
    "inputs": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "loud": {"type": "boolean", "default": False}},
        "required": ["name"],
    },
    "nodes": [
        node("greet", "reshape", {"output": {"text": "hello {{ inputs.name }}"}}),
        node(
            "route",
            "conditional",
            {"branches": [{"name": "loud", "when": "inputs.loud | default(false)"}]},
            label='Loud? "yes" | no',
        ),
        node("shout", "reshape", {"output": "{{ nodes.greet.output.text | upper }}!"}),
        node("say", "reshape", {"output": "{{ nodes.greet.output.text }}"}),
    ],
    "edges": [
        edge("greet", "route"),
        edge("route", "shout", "loud"),
        edge("route", "say", "else"),
    ],
}


def arcee(server: ServeProcess, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=f"{server.base_url}/arcee", headers=headers, timeout=60)


def create(server: ServeProcess, key: str, definition: dict[str, Any]) -> str:
    response = httpx.post(
        f"{server.base_url}/v1/workflows",
        json=definition,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


def execute(http: httpx.Client, workflow_id: str, inputs: Any) -> str:
    response = http.post(f"/workflows/{workflow_id}/execute", json=inputs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"message", "run_id"}
    assert body["message"] == "Workflow execution started"
    return str(UUID(body["run_id"]))


def read_run(
    http: httpx.Client, workflow_id: str, run_id: str, until: Callable[[Any], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = http.get(f"/workflows/{workflow_id}/runs/{run_id}")
        assert response.status_code == 200, response.text
        (run,) = response.json()
        if until(run):
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
        time.sleep(0.05)


def done(run: dict[str, Any]) -> bool:
    return run["status"] in {"completed", "failed", "cancelled"}


def steps_of(http: httpx.Client, workflow_id: str, run_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/workflows/{workflow_id}/runs/{run_id}/steps")
    assert response.status_code == 200, response.text
    steps: list[dict[str, Any]] = response.json()
    return steps


def test_an_executed_run_reads_back_as_one_run_and_its_steps_in_execution_order(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        run_id = execute(http, workflow_id, {"name": "ada", "loud": True})
        run = read_run(http, workflow_id, run_id, done)
        steps = steps_of(http, workflow_id, run_id)

    assert set(run) == RUN_KEYS
    assert run["id"] == run_id and run["status"] == "completed" and run["error"] is None
    assert ARCEE_TIME.match(run["start_time"]) and ARCEE_TIME.match(run["end_time"])
    assert isinstance(run["elapsed_time"], int) and run["elapsed_time"] >= 0
    assert run["inputs"] == {"name": "ada", "loud": True}
    assert run["outputs"] == {"shout": "HELLO ADA!"}  # the run's output: its finished ends
    assert run["all_outputs"]["name"] == "ada"
    assert run["all_outputs"]["greet"] == {"text": "hello ada"}
    assert run["all_outputs"]["shout"] == "HELLO ADA!"
    assert "say" not in run["all_outputs"]  # the branch not taken has no output

    assert [s["node_id"] for s in steps] == ["greet", "route", "shout", "say"]
    assert [s["status"] for s in steps] == ["completed", "completed", "completed", "skipped"]
    for step in steps:
        assert set(step) == STEP_KEYS
        assert UUID(step["id"]) and step["id"] != step["node_id"]
        assert isinstance(step["tokens"], int) and isinstance(step["elapsed_time"], int)
    assert len({s["id"] for s in steps}) == 4
    greet, _, shout, say = steps
    assert ARCEE_TIME.match(greet["start_time"]) and ARCEE_TIME.match(greet["end_time"])
    assert greet["outputs"] == {"text": "hello ada"}
    # Every kind shows the run and what came before it, as Arcee's steps do.
    assert greet["inputs"]["run_id"] == run_id
    assert greet["inputs"]["input_data"] == {"name": "ada", "loud": True}
    assert shout["inputs"]["input_data"]["greet"] == {"text": "hello ada"}
    assert "route" in shout["inputs"]["input_data"]
    assert shout["inputs"]["output"] == "HELLO ADA!"
    assert say["inputs"] == {} and say["outputs"] == {} and say["start_time"] is None


def test_a_run_waiting_on_a_review_reads_back_running_with_its_pending_steps(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, hil_workflow("arcee-review"))
    with arcee(api_server, org_key) as http:
        run_id = execute(http, workflow_id, {"name": "ada"})

        def paused(run: dict[str, Any]) -> bool:
            steps = {s["node_id"]: s for s in steps_of(http, workflow_id, run_id)}
            return steps["check"]["start_time"] is not None and steps["draft"]["end_time"]

        run = read_run(http, workflow_id, run_id, paused)
        steps = steps_of(http, workflow_id, run_id)
        (listed,) = http.get(f"/workflows/{workflow_id}/runs").json()

    assert run["status"] == "running" and run["end_time"] is None and run["outputs"] is None
    assert listed["id"] == run_id and listed["status"] == "running"
    by_node = {s["node_id"]: s for s in steps}
    assert [s["node_id"] for s in steps] == ["draft", "check", "publish", "redo"]
    assert by_node["draft"]["status"] == "completed"
    check = by_node["check"]
    assert check["status"] == "running" and check["end_time"] is None
    assert check["inputs"]["input_data"]["draft"] == {"text": "hello ada"}
    for waiting in ("publish", "redo"):
        step = by_node[waiting]
        assert step["status"] == "pending"
        assert step["start_time"] is None and step["end_time"] is None
        assert step["elapsed_time"] == 0 and step["inputs"] == {}


def test_the_execution_history_is_newest_first_and_paged_by_limit_and_offset(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        started = [execute(http, workflow_id, {"name": f"n{i}"}) for i in range(3)]
        for run_id in started:
            read_run(http, workflow_id, run_id, done)
        history = http.get(f"/workflows/{workflow_id}/runs").json()
        window = http.get(f"/workflows/{workflow_id}/runs", params={"limit": 1, "offset": 1})
        past_the_end = http.get(f"/workflows/{workflow_id}/runs", params={"offset": 3})
        far = http.get(f"/workflows/{workflow_id}/runs", params={"offset": 2**62})

    assert [run["id"] for run in history] == started[::-1]
    assert all(set(run) == RUN_KEYS for run in history)
    assert [run["inputs"]["name"] for run in history] == ["n2", "n1", "n0"]
    assert [run["id"] for run in window.json()] == [started[1]]
    assert past_the_end.status_code == 200 and past_the_end.json() == []
    assert far.status_code == 200 and far.json() == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 10**30}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**64}, "offset"),
        ({"offset": "1.5"}, "offset"),
    ],
)
def test_hostile_paging_values_are_422s_naming_the_parameter(
    api_server: ServeProcess, org_key: str, query: dict[str, Any], field: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        response = http.get(f"/workflows/{workflow_id}/runs", params=query)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["query", field]
    assert problem["msg"] and problem["type"]


def test_the_workflow_list_gives_each_workflow_with_its_graph(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        response = http.get("/workflows")
    assert response.status_code == 200, response.text
    (listed,) = [w for w in response.json() if w["workflow_id"] == workflow_id]
    assert listed["name"] == "arcee-greeting"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$", listed["created_at"])
    graph = listed["graph"]
    assert list(graph["nodes"]) == ["greet", "route", "shout", "say"]
    assert graph["nodes"]["greet"] == {
        "type": "reshape",
        "metadata": {"description": "greet", "output": {"text": "hello {{ inputs.name }}"}},
    }
    assert graph["edges"] == [
        ["START", "greet"],
        ["greet", "route"],
        ["route", "shout"],
        ["route", "say"],
        ["shout", "END"],
        ["say", "END"],
    ]
    assert graph["entry_point"] == "greet" and graph["finish_point"] == "shout"
    assert graph["selectedOutput"] is None  # two ends: the run's output holds both
    assert graph["input_data"] == {"name": None, "loud": False}


def test_the_diagram_is_mermaid_with_branches_and_escaped_labels(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        response = http.get(f"/workflows/{workflow_id}/diagram")
    assert response.status_code == 200, response.text
    (diagram,) = response.json().values()
    lines = diagram.splitlines()
    assert lines[0] == "graph TD"
    assert '    n1["Loud? #quot;yes#quot; #124; no (route)<br/>conditional"]' in lines
    assert "    START --> n0" in lines
    assert '    n1 -->|"loud"| n2' in lines and '    n1 -->|"else"| n3' in lines
    assert "    n2 --> END" in lines and "    n3 --> END" in lines


def test_bearer_auth_and_a_bad_key_is_401_in_arcees_body(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    for key in (None, "stp_not-a-key"):
        with arcee(api_server, key) as http:
            response = http.get(f"/workflows/{workflow_id}/runs")
        assert response.status_code == 401, response.text
        assert set(response.json()) == {"detail"}
        assert isinstance(response.json()["detail"], str)
    with arcee(api_server, org_key) as http:
        assert http.get(f"/workflows/{workflow_id}/runs").status_code == 200


def test_a_read_key_cannot_execute(api_server: ServeProcess, make_key: Any) -> None:
    organization = "org-arcee-read-only"
    workflow_id = create(api_server, make_key(organization), GREETING)
    with arcee(api_server, make_key(organization, scopes=("read",))) as http:
        response = http.post(f"/workflows/{workflow_id}/execute", json={"name": "ada"})
    assert response.status_code == 403, response.text
    assert "run" in response.json()["detail"]


def test_unknown_and_other_organizations_runs_and_workflows_are_404s(
    api_server: ServeProcess, org_key: str, make_key: Any
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    other_workflow = create(api_server, org_key, {**GREETING, "name": "arcee-other"})
    with arcee(api_server, org_key) as http:
        run_id = execute(http, workflow_id, {"name": "ada"})
        read_run(http, workflow_id, run_id, done)
    unknown = "00000000-0000-4000-8000-000000000000"
    with arcee(api_server, make_key("org-arcee-stranger")) as stranger:
        for path in (
            f"/workflows/{workflow_id}/runs/{run_id}",
            f"/workflows/{workflow_id}/runs/{run_id}/steps",
            f"/workflows/{workflow_id}/runs",
            f"/workflows/{workflow_id}/diagram",
        ):
            response = stranger.get(path)
            assert response.status_code == 404, (path, response.text)
            assert set(response.json()) == {"detail"}
        executed = stranger.post(f"/workflows/{workflow_id}/execute", json={"name": "x"})
        assert executed.status_code == 404
        assert workflow_id not in {w["workflow_id"] for w in stranger.get("/workflows").json()}
    with arcee(api_server, org_key) as http:
        for path in (
            f"/workflows/{workflow_id}/runs/{unknown}",
            f"/workflows/{workflow_id}/runs/{unknown}/steps",
            f"/workflows/{other_workflow}/runs/{run_id}",
            f"/workflows/{unknown}/runs",
            f"/workflows/{unknown}/diagram",
            "/no/such/path",
        ):
            response = http.get(path)
            assert response.status_code == 404, (path, response.text)
            assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/workflows/not-a-uuid/runs", "workflow_id"),
        ("/workflows/not-a-uuid/diagram", "workflow_id"),
        ("/workflows/{workflow_id}/runs/42", "run_id"),
        ("/workflows/{workflow_id}/runs/42/steps", "run_id"),
    ],
)
def test_malformed_ids_are_422s_naming_the_path_parameter(
    api_server: ServeProcess, org_key: str, path: str, field: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        response = http.get(path.format(workflow_id=workflow_id))
    assert response.status_code == 422, response.text
    assert [p["loc"] for p in response.json()["detail"]] == [["path", field]]


def test_execute_refuses_inputs_that_are_not_the_workflows(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    url = f"/workflows/{workflow_id}/execute"
    with arcee(api_server, org_key) as http:
        not_an_object = http.post(url, json=["ada"])
        missing = http.post(url, json={"loud": True})
        not_utf8 = http.post(
            url, content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"}
        )
        history = http.get(f"/workflows/{workflow_id}/runs").json()
    assert not_an_object.status_code == 422, not_an_object.text
    assert not_an_object.json()["detail"][0]["loc"] == ["body"]
    assert missing.status_code == 422, missing.text
    assert "name" in str(missing.json()["detail"])
    assert not_utf8.status_code == 400, not_utf8.text
    assert "UTF-8" in not_utf8.json()["detail"]
    assert history == []


def test_a_loops_iterations_and_a_failed_step_read_back(
    api_server: ServeProcess, org_key: str
) -> None:
    body = {
        "nodes": [
            node("double", "reshape", {"output": "{{ loop.item * 2 }}"}),
            node("call", "api_call", {"url": "http://127.0.0.1:1/", "timeout_s": 2}),
        ],
        "edges": [edge("double", "call")],
    }
    definition = {
        "name": "arcee-loop",
        "nodes": [
            node("each", "for_each", {"items": [1, 2]}, body=body),
            node("after", "reshape", {"output": "done"}),
        ],
        "edges": [edge("each", "after")],
    }
    workflow_id = create(api_server, org_key, definition)
    with arcee(api_server, org_key) as http:
        run_id = execute(http, workflow_id, None)
        run = read_run(http, workflow_id, run_id, done)
        steps = steps_of(http, workflow_id, run_id)
        diagram = http.get(f"/workflows/{workflow_id}/diagram").json()["diagram"]

    assert run["status"] == "failed" and isinstance(run["error"], str) and run["error"]
    assert run["inputs"] == {} and run["outputs"] is None
    statuses = {(s["node_id"], s["status"]) for s in steps}
    assert ("each", "failed") in statuses and ("double", "completed") in statuses
    (failed_call, *_) = [s for s in steps if s["node_id"] == "call" and s["status"] == "failed"]
    assert isinstance(failed_call["error"], str) and failed_call["error"]
    assert failed_call["inputs"]["input_data"]["double"] in (2, 4)
    assert {s["status"] for s in steps if s["node_id"] == "after"} <= {"cancelled", "skipped"}
    assert '    subgraph n0_body["body of each"]' in diagram.splitlines()
    assert '    n0 -.->|"each iteration"| n0_body' in diagram.splitlines()


def test_other_key_places_work_and_other_failures_are_in_arcees_body(
    api_server: ServeProcess, org_key: str
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, None) as http:
        with_header = http.get(f"/workflows/{workflow_id}/runs", headers={"x-api-key": org_key})
        not_allowed = http.delete(f"/workflows/{workflow_id}/runs", headers={"x-api-key": org_key})
        too_large = http.post(
            f"/workflows/{workflow_id}/execute",
            content=b'{"name": "' + b"x" * (11 * 1024 * 1024) + b'"}',
            headers={"x-api-key": org_key, "Content-Type": "application/json"},
        )
    assert with_header.status_code == 200 and with_header.json() == []
    assert not_allowed.status_code == 405 and isinstance(not_allowed.json()["detail"], str)
    assert too_large.status_code == 413 and isinstance(too_large.json()["detail"], str)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}",
        b'{"name": NaN}',
        b'{"name": 1e999}',
        b'{"name": "a\\u0000b"}',
        b'{"name": ' + b"9" * 5000 + b"}",
    ],
    ids=["deep", "nan", "infinity", "nul", "long-integer"],
)
def test_hostile_inputs_are_refused_in_arcees_body_and_start_nothing(
    api_server: ServeProcess, org_key: str, raw: bytes
) -> None:
    workflow_id = create(api_server, org_key, GREETING)
    with arcee(api_server, org_key) as http:
        response = http.post(
            f"/workflows/{workflow_id}/execute",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        history = http.get(f"/workflows/{workflow_id}/runs").json()
    assert response.status_code in {400, 413, 422}, response.text
    assert set(response.json()) == {"detail"}
    assert history == []


def test_execute_history_and_steps_on_each_database(
    tmp_path: Path, empty_database_url: str
) -> None:
    """The same reads on SQLite and PostgreSQL, offsets at the edge of a 64-bit integer
    included."""
    server = start_server(tmp_path / "home", env={"STEPLINE_DATABASE_URL": empty_database_url})
    try:
        workflow_id = create(server, server.admin_key, GREETING)
        with arcee(server, server.admin_key) as http:
            started = [execute(http, workflow_id, {"name": f"n{i}"}) for i in range(2)]
            for run_id in started:
                read_run(http, workflow_id, run_id, done)
            history = http.get(f"/workflows/{workflow_id}/runs", params={"limit": 1}).json()
            edge_of_int = http.get(f"/workflows/{workflow_id}/runs", params={"offset": 2**63 - 1})
            past_it = http.get(f"/workflows/{workflow_id}/runs", params={"offset": 2**63})
            steps = steps_of(http, workflow_id, started[0])
    finally:
        server.stop()
    assert [run["id"] for run in history] == [started[1]]
    assert edge_of_int.status_code == 200 and edge_of_int.json() == []
    assert past_it.status_code == 422
    assert [s["status"] for s in steps] == ["completed", "completed", "skipped", "completed"]
    assert steps[3]["outputs"] == "hello n0"
