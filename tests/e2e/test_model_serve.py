"""Model nodes through a real `stepline serve`: providers from the home's stepline.toml, the
key an organization's secret set over the API (a run without it refused with a 422 naming
node and field), the steps served with model, tokens, cost and confidence_info, and the
key and the secrets in messages nowhere in the database file, the API's answers or the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.model_nodes import KEY, KEY_SECRET, MODEL
from support.openai_server import Answer, StandIn, openai_stand_in
from support.server import ServeProcess, start_server

pytestmark = pytest.mark.slow

TOPIC_SECRET = "hush-e2e-41b7"


@pytest.fixture
def provider() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, provider: StandIn) -> Iterator[ServeProcess]:
    home = tmp_path / "home"
    home.mkdir()
    # The default place of the configuration: $STEPLINE_HOME/stepline.toml.
    (home / "stepline.toml").write_text(
        f"""
[providers.local]
base_url = "{provider.base_url}"
api_key = "{{{{ secrets.{KEY_SECRET} }}}}"
default_model = "{MODEL}"

[providers.local.prices."{MODEL}"]
prompt = 0.15
completion = 0.6
"""
    )
    process = start_server(home, env={"STEPLINE_LOG_LEVEL": "DEBUG"})
    try:
        yield process
    finally:
        process.stop()


WORKFLOW: dict[str, Any] = {
    "name": "seed-000-model",
    "inputs": {"type": "object", "properties": {"prompt": {"type": "string"}}},
    "nodes": [
        {
            "id": "model",
            "type": "model",
            "config": {
                "provider": "local",
                "messages": [
                    {"role": "system", "content": "Passphrase: {{ secrets.TOPIC_SECRET }}"},
                    {"role": "user", "content": "{{ inputs.prompt }}"},
                ],
                "temperature": 0.7,
                "logprobs": True,
            },
        }
    ],
}


def test_a_model_run_over_http_is_on_the_record_without_its_secrets(
    server: ServeProcess, provider: StandIn
) -> None:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        created = http.post("/v1/workflows", json=WORKFLOW)
        assert created.status_code == 201, created.text
        runs = f"/v1/workflows/{created.json()['id']}/runs"
        inputs = {"inputs": {"prompt": "Tell me a joke about the weather"}}

        refused = http.post(runs, json=inputs)
        assert refused.status_code == 422, refused.text
        details = {d["field"]: d["message"] for d in refused.json()["error"]["details"]}
        assert details == {
            "workflow.nodes[0].config.provider": f"node 'model' at $.nodes[0].config.provider "
            f"reads secret {KEY_SECRET!r}, which is not set",
            "workflow.nodes[0].config.messages[0].content": "node 'model' at "
            "$.nodes[0].config.messages[0].content reads secret 'TOPIC_SECRET', which is not set",
        }

        for name, value in ((KEY_SECRET, KEY), ("TOPIC_SECRET", TOPIC_SECRET)):
            put = http.put(f"/v1/secrets/{name}", json={"value": value})
            assert put.status_code in (200, 201), put.text
        provider.script(
            Answer(
                content=f"A joke ({TOPIC_SECRET})",
                usage={"prompt_tokens": 36, "completion_tokens": 48, "total_tokens": 84},
            )
        )
        started = http.post(f"{runs}?wait=true&timeout_s=60", json=inputs)
        assert started.status_code == 200, started.text
        run = started.json()
        assert run["status"] == "completed", run["error"]
        steps = http.get(f"{runs}/{run['id']}/steps")
        assert steps.status_code == 200, steps.text
        (step,) = steps.json()["data"]
        texts = [started.text, steps.text, http.get(f"{runs}/{run['id']}").text]

    sent = provider.completions[-1]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["messages"][0]["content"] == f"Passphrase: {TOPIC_SECRET}"

    assert step["node_type"] == "model"
    assert step["model"] == MODEL
    assert step["tokens"] == {"prompt": 36, "completion": 48, "total": 84}
    assert step["cost"] == {
        "total": 0.0000342,
        "prompt": 0.0000054,
        "completion": 0.0000288,
        "input": 0.0000054,
        "output": 0.0000288,
        "currency": "USD",
    }
    assert step["inputs"] == {
        "model": MODEL,
        "stream": False,
        "messages": [
            {"role": "system", "content": "Passphrase: ***"},
            {"role": "user", "content": "Tell me a joke about the weather"},
        ],
        "temperature": 0.7,
        "logprobs": True,
        "run_id": run["id"],
        "input_data": inputs["inputs"],
    }
    outputs = step["outputs"]
    assert outputs["content"] == "A joke (***)"
    assert outputs["object"] == "chat.completion"
    assert outputs["usage"] == {"prompt_tokens": 36, "completion_tokens": 48, "total_tokens": 84}
    assert outputs["confidence_info"]["error"] is None
    assert 0 < outputs["confidence_info"]["confidence_score"] < 1
    assert run["total_tokens"] == 84

    log = server.log()
    server.stop()
    database = server.home / "stepline.db"
    stored = b"".join(
        path.read_bytes() for path in sorted(database.parent.glob(database.name + "*"))
    )
    assert b"A joke (***)" in stored
    for value in (KEY, TOPIC_SECRET):
        assert value.encode() not in stored
        assert value not in log
        for text in texts:
            assert value not in text
