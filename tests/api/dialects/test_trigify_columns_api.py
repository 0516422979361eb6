"""`column_config` is part of stepline's own workflow definition: the native API accepts it,
returns it, refuses a bad one naming each field, and the Trigify dialect reads it for
each step, loop iterations included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ServeProcess


@pytest.fixture
def native(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {org_key}"}
    with httpx.Client(base_url=api_server.base_url, headers=headers, timeout=60) as http:
        yield http


def looping(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """each (for_each over 1, 2, 3) -> double (n * 2 per item) and a column on double."""
    return {
        "name": "trigify-columns-loop",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": [1, 2, 3]},
                "body": {
                    "nodes": [
                        {
                            "id": "double",
                            "type": "reshape",
                            "config": {"output": {"n": "{{ loop.item * 2 }}"}},
                        }
                    ]
                },
            }
        ],
        "column_config": columns,
    }


COLUMNS = [{"id": "n", "stepId": "double", "fieldPath": "n", "label": "Doubled"}]


def test_the_native_api_keeps_column_config_in_the_definition(native: httpx.Client) -> None:
    created = native.post("/v1/workflows", json=looping(COLUMNS))
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    read = native.get(f"/v1/workflows/{workflow_id}")
    assert read.json()["definition"]["column_config"] == COLUMNS

    changed = [*COLUMNS, {"id": "all", "stepId": "each", "fieldPath": "[0].n", "label": "First"}]
    replaced = native.put(f"/v1/workflows/{workflow_id}", json=looping(changed))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["definition"]["column_config"] == changed


def test_the_native_api_refuses_bad_columns_naming_each_field(native: httpx.Client) -> None:
    bad = [
        {"id": "n", "stepId": "dubble", "fieldPath": "n", "label": "Doubled"},
        {"id": "n", "stepId": "double", "fieldPath": "n..m", "label": "Other"},
        {"id": "x", "stepId": "double", "label": 3},
    ]
    response = native.post("/v1/workflows", json=looping(bad))
    assert response.status_code == 422, response.text
    details = {d["field"]: d["message"] for d in response.json()["error"]["details"]}
    assert details == {
        "body.column_config[0].stepId": "stepId 'dubble' names no node of the workflow "
        "(did you mean 'double'?)",
        "body.column_config[1].fieldPath": "expected a key at character 3 of 'n..m', found '.'",
        "body.column_config[1].id": "duplicate column id 'n' (first used by $.column_config[0])",
        "body.column_config[2].fieldPath": "required field is missing",
        "body.column_config[2].label": "Input should be a valid string (got 3)",
    }

    checked = native.post("/v1/workflows/validate", json=looping(bad))
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is False


def test_loop_iterations_read_back_in_trigify_with_their_columns(
    api_server: ServeProcess, native: httpx.Client, org_key: str
) -> None:
    created = native.post("/v1/workflows", json=looping(COLUMNS))
    workflow_id = created.json()["id"]
    started = native.post(
        f"/v1/workflows/{workflow_id}/runs?wait=true&timeout_s=60", json={"inputs": {}}
    )
    run = started.json()
    assert run["status"] == "completed", run

    url = f"{api_server.base_url}/trigify/v1/workflows/{workflow_id}/executions/{run['id']}"
    data = httpx.get(url, headers={"x-api-key": org_key}).json()["data"]
    steps = {s["step_id"]: s for s in data["steps"]}
    assert list(steps) == [
        "each",
        "each_iter_0_double",
        "each_iter_1_double",
        "each_iter_2_double",
    ]
    assert steps["each"]["operation"] == "for_each"
    assert steps["each"]["output"] == {"value": [{"n": 2}, {"n": 4}, {"n": 6}]}
    assert steps["each"]["mapped_output"] is None
    assert [steps[f"each_iter_{i}_double"]["mapped_output"] for i in range(3)] == [
        {"Doubled": 2},
        {"Doubled": 4},
        {"Doubled": 6},
    ]
