"""The steps listing and the downloads (the database-built fast path) over HTTP give the
same step documents as `GET /steps/{id}` (the model path: StepRecord, then to_json)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ServeProcess, make_key

IO_KEYS = {"inputs", "outputs", "handle_inputs", "handle_outputs"}

FAILING = """
def main(inputs):
    raise ValueError('bad "thing"\\n\\ttabbed é')
"""

DEFINITION: dict[str, Any] = {
    "name": "documents",
    "nodes": [
        {"id": "real", "type": "reshape", "config": {"output": 1.5}},
        {"id": "int", "type": "reshape", "config": {"output": 7}},
        {"id": "text", "type": "reshape", "config": {"output": 'quote " é \n tab\t 😀'}},
        {"id": "tree", "type": "reshape", "config": {"output": {"a": [1, 2.25, None], "z": True}}},
        {"id": "fails", "type": "code", "on_error": "continue", "config": {"code": FAILING}},
        {
            "id": "route",
            "type": "conditional",
            "config": {"branches": [{"name": "high", "when": "1 > 2"}]},
        },
        {"id": "skipped", "type": "reshape", "config": {"output": "never"}},
        {"id": "taken", "type": "reshape", "config": {"output": "{{ nodes.tree.output }}"}},
    ],
    "edges": [
        {"from": "tree", "to": "route"},
        {"from": "route", "handle": "high", "to": "skipped"},
        {"from": "route", "handle": "else", "to": "taken"},
    ],
}


@pytest.fixture(scope="module")
def finished(api_server: ServeProcess) -> Iterator[tuple[httpx.Client, str]]:
    key = make_key(api_server.database_url, "org-step-documents")
    with httpx.Client(
        base_url=api_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        created = http.post("/v1/workflows", json=DEFINITION)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        run = http.post(f"/v1/workflows/{workflow_id}/runs", params={"wait": "true"}, json={})
        assert run.status_code == 200, run.text
        yield http, f"/v1/workflows/{workflow_id}/runs/{run.json()['id']}"


def _by_model(http: httpx.Client, run_path: str, step_ids: list[str]) -> list[dict[str, Any]]:
    docs = []
    for step_id in step_ids:
        response = http.get(f"{run_path}/steps/{step_id}")
        assert response.status_code == 200, response.text
        docs.append(response.json())
    return docs


def _listed(http: httpx.Client, run_path: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"{run_path}/steps", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "next_cursor", "prev_cursor"}
    return list(body["data"])


def test_listed_steps_are_the_single_step_documents(finished: tuple[httpx.Client, str]) -> None:
    http, run_path = finished
    listed = _listed(http, run_path)
    assert len(listed) == len(DEFINITION["nodes"])
    model = _by_model(http, run_path, [step["id"] for step in listed])
    assert listed == model
    statuses = {step["step_id"]: step["status"] for step in listed}
    assert statuses["fails"] == "error" and statuses["skipped"] == "skipped"
    by_id = {step["step_id"]: step for step in listed}
    assert by_id["real"]["outputs"] == 1.5 and by_id["int"]["outputs"] == 7
    assert by_id["fails"]["error_details"]["type"] == "ValueError"

    without_io = _listed(http, run_path, include_io="false")
    assert without_io == [{k: v for k, v in step.items() if k not in IO_KEYS} for step in model]


def test_downloads_hold_the_single_step_documents(finished: tuple[httpx.Client, str]) -> None:
    http, run_path = finished
    listed = _listed(http, run_path)
    model = _by_model(http, run_path, [step["id"] for step in listed])

    ndjson = http.get(f"{run_path}/download", params={"format": "ndjson"})
    assert ndjson.status_code == 200
    assert ndjson.text.endswith("}\n")
    assert [json.loads(line) for line in ndjson.text.splitlines()] == model

    document = http.get(f"{run_path}/download").json()
    assert document["steps"] == model
    assert document["run"]["total_steps"] == len(model)

    node = http.get(f"{run_path}/nodes/fails/download").json()
    assert node == [step for step in model if step["node_id"] == "fails"]
    node_lines = http.get(f"{run_path}/nodes/text/download", params={"format": "ndjson"})
    assert [json.loads(line) for line in node_lines.text.splitlines()] == [
        step for step in model if step["node_id"] == "text"
    ]


def test_an_unknown_run_is_404_on_every_fast_route(finished: tuple[httpx.Client, str]) -> None:
    http, run_path = finished
    missing = run_path.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    for path, params in [
        ("/steps", {}),
        ("/download", {"format": "ndjson"}),
        ("/download", {}),
        ("/nodes/real/download", {}),
    ]:
        response = http.get(missing + path, params=params)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["message"]


# --- the steps page's fast lane (ahead of FastAPI) answers exactly as the route would -------


def _steps(
    api_server: ServeProcess, run_path: str, headers: dict[str, str], query: str = ""
) -> httpx.Response:
    url = f"{api_server.base_url}{run_path}/steps{query}"
    return httpx.get(url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def run_path(finished: tuple[httpx.Client, str]) -> str:
    return finished[1]


@pytest.mark.parametrize(
    ("query", "count", "io"),
    [
        ("", 8, True),
        ("?limit=3", 3, True),
        ("?limit=3&limit=5", 5, True),  # a repeated parameter: the last one, as FastAPI
        ("?include_io=FALSE", 8, False),
        ("?include_io=0&limit=2", 2, False),
        ("?include_io=yes&status=skipped", 1, True),
        ("?node_type=reshape&unknown=ignored", 6, True),
        ("?limit=%32", 2, True),
    ],
)
def test_plain_queries(
    api_server: ServeProcess, make_key: Any, run_path: str, query: str, count: int, io: bool
) -> None:
    key = make_key("org-step-documents", ("read",))
    response = _steps(api_server, run_path, {"Authorization": f"Bearer {key}"}, query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    data = response.json()["data"]
    assert len(data) == count
    assert all(IO_KEYS <= set(step) if io else not IO_KEYS & set(step) for step in data)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?limit=0", 422),
        ("?limit=1001", 422),
        ("?limit=", 422),
        ("?include_io=maybe", 422),
        ("?status=nope", 422),
        ("?iteration=-1", 422),
        ("?after=bm9wZQ", 422),
        ("?after=a&before=b", 422),
    ],
)
def test_bad_queries_get_the_routes_errors(
    api_server: ServeProcess, make_key: Any, run_path: str, query: str, status: int
) -> None:
    key = make_key("org-step-documents", ("read",))
    response = _steps(api_server, run_path, {"Authorization": f"Bearer {key}"}, query)
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"]


def test_every_key_source_and_its_errors(
    api_server: ServeProcess, make_key: Any, run_path: str
) -> None:
    key = make_key("org-step-documents", ("read",))
    for headers, query in [
        ({"x-api-key": key}, ""),
        ({"Api-Key": key}, ""),
        ({}, f"?access_token={key}"),
        ({"Authorization": f"bearer   {key}"}, ""),
    ]:
        assert _steps(api_server, run_path, headers, query).status_code == 200, headers
    assert _steps(api_server, run_path, {}).status_code == 401
    assert _steps(api_server, run_path, {"Authorization": "Bearer stp_nope"}).status_code == 401
    # Another organization's key does not see the run; every scope holds read.
    stranger = make_key("org-step-documents-stranger", ("read",))
    assert _steps(api_server, run_path, {"Authorization": f"Bearer {stranger}"}).status_code == 404
    runner = make_key("org-step-documents", ("run",))
    assert _steps(api_server, run_path, {"Authorization": f"Bearer {runner}"}).status_code == 200


def test_workspaces_narrow_the_fast_lane_too(
    api_server: ServeProcess, make_key: Any, run_path: str
) -> None:
    key = make_key("org-step-documents", ("read",))
    elsewhere = {"Authorization": f"Bearer {key}", "X-Workspace-Id": str(uuid.uuid4())}
    assert _steps(api_server, run_path, elsewhere).status_code == 404
    bad = {"Authorization": f"Bearer {key}", "X-Workspace-Id": "not-a-uuid"}
    assert _steps(api_server, run_path, bad).status_code == 422
    limited = make_key("org-step-documents", ("read",), workspace_id=uuid.uuid4())
    assert _steps(api_server, run_path, {"Authorization": f"Bearer {limited}"}).status_code == 404
    other = {"Authorization": f"Bearer {limited}", "X-Workspace-Id": str(uuid.uuid4())}
    assert _steps(api_server, run_path, other).status_code == 403


def test_a_revoked_key_is_refused_at_once(
    api_server: ServeProcess, make_key: Any, run_path: str
) -> None:
    admin = make_key("org-step-documents")
    with httpx.Client(base_url=api_server.base_url, timeout=30) as http:
        made = http.post(
            "/v1/keys",
            json={"name": "short-lived", "scopes": ["read"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        doomed = made.json()
        headers = {"Authorization": f"Bearer {doomed['key']}"}
        assert _steps(api_server, run_path, headers).status_code == 200
        revoked = http.delete(
            f"/v1/keys/{doomed['id']}", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 204
    assert _steps(api_server, run_path, headers).status_code == 401
