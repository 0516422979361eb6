"""Seed 003's example as a contract: a workflow like its own (one model step, "Summarise
Post", and a column reading the summary out of its output) runs against the loopback
OpenAI-compatible stand-in, and GET /trigify/v1/workflows/{id}/executions/{runId} answers
with the example's keys, types and nesting.

Seed 003 keeps only the heading "Example Response"; examples/trigify_execution.json is that
example as docs.trigify.io publishes it (the page the seed was taken from), every key of
the seed's field tables in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.model_nodes import KEY, KEY_SECRET, MODEL
from support.openai_server import Answer, StandIn, openai_stand_in
from support.server import ServeProcess, start_server
from support.shapes import assert_same_shape

pytestmark = pytest.mark.slow  # a server of its own, configured with the model stand-in

EXAMPLE = json.loads((Path(__file__).parent / "examples" / "trigify_execution.json").read_text())
SUMMARY = "The author announced a new AI platform."

WORKFLOW: dict[str, Any] = {
    "name": "trigify-seed-003",
    "inputs": {"type": "object", "properties": {"post": {"type": "string"}}},
    "nodes": [
        {
            "id": "agent-1",
            "type": "model",
            "label": "Summarise Post",
            "config": {
                "provider": "local",
                "messages": [{"role": "user", "content": "Summarise this post: {{ inputs.post }}"}],
            },
        }
    ],
    "column_config": [
        {
            "id": "col_summary",
            "stepId": "agent-1",
            "fieldPath": "choices[0].message.content",
            "label": "Summary",
        }
    ],
}


@pytest.fixture(scope="module")
def provider() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: StandIn) -> Iterator[ServeProcess]:
    home = tmp_path_factory.mktemp("trigify-contract") / "home"
    home.mkdir()
    (home / "stepline.toml").write_text(
        f"""
[providers.local]
base_url = "{provider.base_url}"
api_key = "{{{{ secrets.{KEY_SECRET} }}}}"
default_model = "{MODEL}"
"""
    )
    process = start_server(home)
    try:
        yield process
    finally:
        process.stop()


def test_seed_003_example_is_answered_key_by_key(server: ServeProcess, provider: StandIn) -> None:
    native = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=native, timeout=60) as http:
        assert http.put(f"/v1/secrets/{KEY_SECRET}", json={"value": KEY}).is_success
        created = http.post("/v1/workflows", json=WORKFLOW)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        assert created.json()["definition"]["column_config"] == WORKFLOW["column_config"]
        provider.script(Answer(content=SUMMARY))
        started = http.post(
            f"/v1/workflows/{workflow_id}/runs?wait=true&timeout_s=60",
            json={"inputs": {"post": "We launched a new AI platform today."}},
        )
        assert started.status_code == 200, started.text
        run = started.json()
        assert run["status"] == "completed", run["error"]

    trigify = {"x-api-key": server.admin_key}
    with httpx.Client(base_url=f"{server.base_url}/trigify", headers=trigify, timeout=60) as http:
        response = http.get(f"/v1/workflows/{workflow_id}/executions/{run['id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    # input and output hold the model call's own values (an OpenAI chat.completion):
    # compared by type; everything else key by key with the example.
    assert_same_shape(
        body,
        EXAMPLE,
        open_keys=frozenset({"$.data.steps[0].input", "$.data.steps[0].output"}),
    )
    data = body["data"]
    assert data["column_config"] == WORKFLOW["column_config"]
    (step,) = data["steps"]
    assert (step["step_id"], step["step_name"], step["operation"]) == (
        "agent-1",
        "Summarise Post",
        "model",
    )
    assert step["status"] == "completed" and step["error"] is None
    assert step["mapped_output"] == {"Summary": SUMMARY}
    assert step["output"]["choices"][0]["message"]["content"] == SUMMARY
    assert step["input"]["messages"][0]["content"].startswith("Summarise this post")
    assert step["duration_ms"] >= 0 and data["duration_ms"] >= step["duration_ms"]
    assert data["started_at"] <= step["started_at"] <= step["ended_at"] <= data["ended_at"]
