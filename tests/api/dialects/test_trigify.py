"""Trigify's executions API under /trigify against a real `stepline serve`: x-api-key, its
envelopes and codes, 404s for unknown and other organizations' runs, 400s for malformed ids
and paging, page arithmetic, a run still going, and a failed step."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.server import ServeProcess
from support.shapes import assert_same_shape
from support.workflows import hil_workflow

EXAMPLES = Path(__file__).parent / "examples"
PREFIX = "/trigify/v1/workflows"
USER_VALUES = ("input", "output", "mapped_output")
"""A step's keys holding the user's workflow's values: compared by type only."""

SLOW = """
import time

def main(inputs):
    time.sleep(60)
    return "never"
"""
BOOM = "def main(inputs):\n    raise ValueError('profile not found')\n"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"trigify_{name}.json").read_text())


@pytest.fixture
def native(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    """The native API, to make workflows and runs (a Trigify client only reads them)."""
    headers = {"Authorization": f"Bearer {org_key}"}
    with httpx.Client(base_url=api_server.base_url, headers=headers, timeout=60) as http:
        yield http


@pytest.fixture
def trigify(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    """A Trigify client: base URL .../trigify, key in x-api-key."""
    headers = {"x-api-key": org_key}
    with httpx.Client(base_url=api_server.base_url, headers=headers, timeout=60) as http:
        yield http


def create_workflow(http: httpx.Client, definition: dict[str, Any]) -> str:
    response = http.post("/v1/workflows", json=definition)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


def start(http: httpx.Client, workflow_id: str, *, wait: bool = False) -> dict[str, Any]:
    params = {"wait": "true", "timeout_s": "60"} if wait else {}
    response = http.post(f"/v1/workflows/{workflow_id}/runs", params=params, json={"inputs": {}})
    assert response.status_code in (200, 202), response.text
    run: dict[str, Any] = response.json()
    return run


def quick_workflow(name: str) -> dict[str, Any]:
    """first -> second, two reshape steps; column `Doubled` reads second's `value`."""
    return {
        "name": name,
        "nodes": [
            {"id": "first", "type": "reshape", "config": {"output": {"value": 21}}},
            {
                "id": "second",
                "type": "reshape",
                "label": "Double it",
                "config": {"output": {"value": "{{ nodes.first.output.value * 2 }}"}},
            },
        ],
        "edges": [{"from": "first", "to": "second"}],
        "column_config": [
            {"id": "doubled", "stepId": "second", "fieldPath": "value", "label": "Doubled"},
            {"id": "absent", "stepId": "second", "fieldPath": "nothing[0]", "label": "Absent"},
        ],
    }


def poll(read: Callable[[], dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        found = read()
        if test(found):
            return found
        assert time.monotonic() < deadline, f"still {found}"
        time.sleep(0.05)


def execution_url(workflow_id: str, run_id: str) -> str:
    return f"{PREFIX}/{workflow_id}/executions/{run_id}"


def failure(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    assert set(body["error"]) <= {"code", "message", "details", "suggestion"}
    error: dict[str, Any] = body["error"]
    return error


# --- reading a finished run -------------------------------------------------------------------


def test_a_finished_run_reads_back_with_its_steps_and_mapped_output(
    native: httpx.Client, trigify: httpx.Client
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-quick"))
    run = start(native, workflow_id, wait=True)
    assert run["status"] == "completed", run

    response = trigify.get(execution_url(workflow_id, run["id"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert_same_shape(
        body,
        example("execution"),
        open_keys=frozenset(f"$.data.steps[{i}].{k}" for i in range(2) for k in USER_VALUES),
    )
    data = body["data"]
    assert data["id"] == data["run_id"] == run["id"]
    assert data["workflow_id"] == workflow_id
    assert data["status"] == "completed" and data["error"] is None
    assert data["event_name"] == "api"
    assert data["started_at"].endswith("Z") and data["ended_at"].endswith("Z")
    assert data["started_at"] <= data["ended_at"]
    assert isinstance(data["duration_ms"], int) and data["duration_ms"] >= 0
    assert data["column_config"] == quick_workflow("")["column_config"]
    first, second = data["steps"]
    assert [first["step_id"], second["step_id"]] == ["first", "second"]
    assert [first["step_name"], second["step_name"]] == ["first", "Double it"]
    assert first["operation"] == second["operation"] == "reshape"
    assert first["status"] == second["status"] == "completed"
    assert second["output"] == {"value": 42}
    assert second["mapped_output"] == {"Doubled": 42, "Absent": None}
    assert first["mapped_output"] is None  # no column reads it
    assert first["started_at"] <= second["started_at"]


def test_executions_are_listed_newest_first_with_page_arithmetic(
    native: httpx.Client, trigify: httpx.Client
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-pages"))
    run_ids = [start(native, workflow_id, wait=True)["id"] for _ in range(5)]
    url = f"{PREFIX}/{workflow_id}/executions"

    default = trigify.get(url)
    assert default.status_code == 200, default.text
    assert_same_shape(default.json(), example("executions"))
    assert default.json()["data"]["pagination"] == {
        "page": 1,
        "page_size": 20,
        "total_count": 5,
        "total_pages": 1,
    }
    pages = [trigify.get(url, params={"page": n, "page_size": 2}).json()["data"] for n in (1, 2, 3)]
    assert [p["pagination"]["total_pages"] for p in pages] == [3, 3, 3]
    listed = [e["run_id"] for p in pages for e in p["executions"]]
    assert listed == run_ids[::-1]
    assert all(e["status"] == "completed" and e["duration"] >= 0 for e in pages[0]["executions"])

    beyond = trigify.get(url, params={"page": 4, "page_size": 2}).json()["data"]
    assert beyond["executions"] == [] and beyond["pagination"]["total_count"] == 5
    exact = trigify.get(url, params={"page_size": 5}).json()["data"]["pagination"]
    assert exact["total_pages"] == 1


def test_a_workflow_without_runs_has_no_pages(native: httpx.Client, trigify: httpx.Client) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-empty"))
    response = trigify.get(f"{PREFIX}/{workflow_id}/executions")
    assert response.json()["data"] == {
        "executions": [],
        "pagination": {"page": 1, "page_size": 20, "total_count": 0, "total_pages": 0},
    }


# --- runs still going, failed and cancelled ------------------------------------------------------


def test_a_running_run_shows_its_running_and_pending_steps(
    native: httpx.Client, trigify: httpx.Client
) -> None:
    workflow_id = create_workflow(
        native,
        {
            "name": "trigify-slow",
            "nodes": [
                {"id": "first", "type": "reshape", "config": {"output": 1}},
                {"id": "slow", "type": "code", "timeout_s": 120, "config": {"code": SLOW}},
                {"id": "after", "type": "reshape", "config": {"output": 2}},
            ],
            "edges": [{"from": "first", "to": "slow"}, {"from": "slow", "to": "after"}],
        },
    )
    run = start(native, workflow_id)
    url = execution_url(workflow_id, run["id"])
    try:
        going = poll(
            lambda: trigify.get(url).json()["data"],
            lambda d: [s["status"] for s in d["steps"]][1:2] == ["running"],
        )
        assert going["status"] == "running"
        assert going["ended_at"] is None and going["duration_ms"] is None
        assert going["error"] is None
        first, slow, after = going["steps"]
        assert (first["status"], slow["status"], after["status"]) == (
            "completed",
            "running",
            "pending",
        )
        assert slow["ended_at"] is None and slow["duration_ms"] is None
        assert slow["output"] is None and slow["error"] is None
        assert after["started_at"].endswith("Z")  # when it was scheduled
        assert_same_shape(
            {"success": True, "data": going},
            example("execution"),
            open_keys=frozenset(f"$.data.steps[{i}].{k}" for i in range(3) for k in USER_VALUES),
        )
        listed = trigify.get(f"{PREFIX}/{workflow_id}/executions").json()["data"]["executions"]
        assert listed[0]["status"] == "running" and listed[0]["completed_at"] is None
    finally:
        assert native.post(f"/v1/workflows/{workflow_id}/runs/{run['id']}/cancel").is_success

    cancelled = poll(lambda: trigify.get(url).json()["data"], lambda d: d["ended_at"] is not None)
    assert cancelled["status"] == "failed"
    assert cancelled["error"]
    statuses = [s["status"] for s in cancelled["steps"]]
    assert statuses[0] == "completed" and statuses[1] == "failed"
    assert cancelled["steps"][1]["error"]


def test_a_run_waiting_for_a_review_is_running_with_its_review_step_running(
    native: httpx.Client, trigify: httpx.Client
) -> None:
    workflow_id = create_workflow(native, hil_workflow("trigify-review"))
    response = native.post(f"/v1/workflows/{workflow_id}/runs", json={"inputs": {"name": "x"}})
    assert response.status_code == 202, response.text
    run = response.json()
    url = execution_url(workflow_id, run["id"])
    paused = poll(
        lambda: native.get(f"/v1/workflows/{workflow_id}/runs/{run['id']}").json(),
        lambda r: r["status"] == "waiting_for_human",
    )
    assert paused["status"] == "waiting_for_human"
    data = trigify.get(url).json()["data"]
    assert data["status"] == "running" and data["ended_at"] is None
    statuses = {s["step_id"]: (s["operation"], s["status"]) for s in data["steps"]}
    assert statuses == {
        "draft": ("reshape", "completed"),
        "check": ("hil", "running"),
        "publish": ("reshape", "pending"),
        "redo": ("reshape", "pending"),
    }


def test_a_failed_step_carries_its_error(native: httpx.Client, trigify: httpx.Client) -> None:
    workflow_id = create_workflow(
        native,
        {
            "name": "trigify-boom",
            "nodes": [
                {
                    "id": "enrich",
                    "type": "code",
                    "label": "Enrich profile",
                    "config": {"code": BOOM},
                },
                {"id": "after", "type": "reshape", "config": {"output": 2}},
            ],
            "edges": [{"from": "enrich", "to": "after"}],
        },
    )
    run = start(native, workflow_id, wait=True)
    assert run["status"] == "failed", run
    body = trigify.get(execution_url(workflow_id, run["id"])).json()
    data = body["data"]
    assert data["status"] == "failed"
    assert "profile not found" in data["error"]
    enrich = data["steps"][0]
    assert enrich["step_name"] == "Enrich profile"
    assert enrich["status"] == "failed"
    assert "profile not found" in enrich["error"]
    assert enrich["output"] is None and enrich["mapped_output"] is None
    assert [s["step_id"] for s in data["steps"]][1:] in ([], ["after"])
    assert all(s["status"] in {"pending", "skipped"} for s in data["steps"][1:])
    listed = trigify.get(f"{PREFIX}/{workflow_id}/executions").json()["data"]["executions"]
    assert listed[0]["status"] == "failed" and "profile not found" in listed[0]["error"]


# --- auth, 404s and 400s -----------------------------------------------------------------------


def test_no_key_and_a_bad_key_are_401_in_trigifys_envelope(
    api_server: ServeProcess, native: httpx.Client
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-auth"))
    url = f"{api_server.base_url}{PREFIX}/{workflow_id}/executions"
    missing = failure(httpx.get(url), 401, "AUTH_REQUIRED")
    assert "x-api-key" in missing["suggestion"]
    bad = failure(httpx.get(url, headers={"x-api-key": "sl_not-a-key"}), 401, "INVALID_API_KEY")
    assert "x-api-key" in bad["suggestion"]
    assert "not valid" in bad["message"]


def test_a_read_only_key_reads_executions(
    api_server: ServeProcess,
    native: httpx.Client,
    make_key: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-reader"))
    run = start(native, workflow_id, wait=True)
    reader = make_key(f"org-{request.node.name}", ("read",))  # org_key's organization
    url = f"{api_server.base_url}{execution_url(workflow_id, run['id'])}"
    response = httpx.get(url, headers={"x-api-key": reader})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["run_id"] == run["id"]


def test_unknown_and_other_organizations_runs_are_404(
    api_server: ServeProcess,
    native: httpx.Client,
    trigify: httpx.Client,
    make_key: Callable[..., str],
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-404"))
    other_workflow = create_workflow(native, quick_workflow("trigify-404-other"))
    run = start(native, workflow_id, wait=True)

    unknown = failure(trigify.get(execution_url(workflow_id, str(uuid.uuid4()))), 404, "NOT_FOUND")
    assert "GET /v1/workflows/{id}/executions" in unknown["suggestion"]
    failure(trigify.get(execution_url(other_workflow, run["id"])), 404, "NOT_FOUND")
    failure(trigify.get(f"{PREFIX}/{uuid.uuid4()}/executions"), 404, "NOT_FOUND")

    stranger_key = make_key("org-trigify-stranger")
    headers = {"x-api-key": stranger_key}
    with httpx.Client(base_url=api_server.base_url, headers=headers, timeout=30) as stranger:
        failure(stranger.get(execution_url(workflow_id, run["id"])), 404, "NOT_FOUND")
        failure(stranger.get(f"{PREFIX}/{workflow_id}/executions"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/wf_abc123/executions", "path.id"),
        ("/wf_abc123/executions/run_x7k9m2", "path.id"),
        ("/{workflow}/executions/run_x7k9m2", "path.runId"),
        ("/{workflow}/executions/" + "9" * 400, "path.runId"),
        ("/%00/executions", "path.id"),
        ("/%FF%FE/executions", "path.id"),
        ("/{workflow}/executions/%00", "path.runId"),
    ],
)
def test_malformed_ids_are_400(
    native: httpx.Client, trigify: httpx.Client, path: str, field: str
) -> None:
    workflow_id = create_workflow(native, quick_workflow(f"trigify-ids-{uuid.uuid4().hex[:6]}"))
    response = trigify.get(PREFIX + path.format(workflow=workflow_id))
    error = failure(response, 400, "VALIDATION_ERROR")
    assert any(line.startswith(f"{field}:") for line in error["details"]["errors"]), error
    assert "UUID" in error["suggestion"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "query.page"),
        ({"page": "-1"}, "query.page"),
        ({"page": str(10**30)}, "query.page"),
        ({"page": "first"}, "query.page"),
        ({"page": "1.5"}, "query.page"),
        ({"page": ""}, "query.page"),
        ({"page": "\x00"}, "query.page"),
        ({"page_size": "0"}, "query.page_size"),
        ({"page_size": "101"}, "query.page_size"),
        ({"page_size": "-20"}, "query.page_size"),
        ({"page_size": str(2**64 + 1)}, "query.page_size"),
        ({"page_size": "twenty"}, "query.page_size"),
    ],
)
def test_paging_out_of_range_or_not_a_number_is_400(
    native: httpx.Client, trigify: httpx.Client, params: dict[str, str], field: str
) -> None:
    workflow_id = create_workflow(native, quick_workflow(f"trigify-paging-{uuid.uuid4().hex[:6]}"))
    response = trigify.get(f"{PREFIX}/{workflow_id}/executions", params=params)
    error = failure(response, 400, "VALIDATION_ERROR")
    assert any(line.startswith(f"{field}:") for line in error["details"]["errors"]), error
    assert error["suggestion"] == "page starts at 1; page_size is 1 to 100 (default 20)."
    assert_same_shape(response.json(), example("error"))


def test_the_largest_page_and_page_size_are_accepted(
    native: httpx.Client, trigify: httpx.Client
) -> None:
    workflow_id = create_workflow(native, quick_workflow("trigify-largest"))
    response = trigify.get(
        f"{PREFIX}/{workflow_id}/executions", params={"page": 10_000_000, "page_size": 100}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["executions"] == []


def test_unknown_paths_and_methods_answer_in_trigifys_envelope(trigify: httpx.Client) -> None:
    missing = failure(trigify.get("/trigify/v1/workflows"), 404, "NOT_FOUND")
    assert "executions" in missing["suggestion"]
    workflow = uuid.uuid4()
    failure(trigify.post(f"{PREFIX}/{workflow}/executions"), 405, "METHOD_NOT_ALLOWED")


def test_the_routes_are_in_the_openapi_document_with_trigifys_envelope(
    trigify: httpx.Client,
) -> None:
    document = trigify.get("/openapi.json").json()
    detail = document["paths"]["/trigify/v1/workflows/{id}/executions/{runId}"]["get"]
    assert detail["tags"] == ["Trigify dialect"]
    for status in ("400", "401", "404"):
        schema = detail["responses"][status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/Failure"), (status, schema)
    assert "/trigify/v1/workflows/{id}/executions" in document["paths"]
