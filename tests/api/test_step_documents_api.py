"""The steps listing and the downloads (the database-built fast path) over HTTP give the
same step documents as `GET /steps/{id}` (the model path: StepRecord, then to_json)."""

from __future__ import annotations

import json
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
