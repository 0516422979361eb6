"""Seed 000's workflow as shipped (examples/joke-to-slack.yaml: prompt -> model -> Slack),
run offline with `stepline run` against the stand-ins, recorded in seed 000's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import stepline
from support.openai_server import openai_stand_in
from support.slack_api import SlackStandIn, channel_id

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "xoxb-seed-000-e2e"


def test_seed_000_runs_offline_and_records_its_steps_in_seed_000s_shape(tmp_path: Path) -> None:
    config = tmp_path / "stepline.toml"
    with openai_stand_in() as provider, SlackStandIn(token=TOKEN) as slack:
        config.write_text(
            (EXAMPLES / "stepline.toml")
            .read_text()
            .replace("http://127.0.0.1:8901/v1", provider.base_url)
        )
        done = stepline(
            "run",
            str(EXAMPLES / "joke-to-slack.yaml"),
            "-i",
            "prompt=Tell me a joke about the weather",
            "-i",
            f"slack_api={slack.base_url}",
            "--json",
            home=tmp_path / "home",
            STEPLINE_CONFIG=str(config),
            STEPLINE_SECRET_SLACK_BOT_TOKEN=TOKEN,
        )
        sent = slack.calls_of("chat.meMessage")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    steps = {step["node_id"]: step for step in document["steps"]}
    model, share = steps["model"], steps["slack_integration"]

    assert model["status"] == "completed"
    assert model["model"] == "stand-in-small"
    assert model["tokens"]["total"] == model["tokens"]["prompt"] + model["tokens"]["completion"] > 0
    assert model["cost"]["currency"] == "USD" and model["cost"]["total"] > 0
    outputs = model["outputs"]
    assert {"id", "object", "created", "model", "choices", "usage"} <= set(outputs)
    assert outputs["object"] == "chat.completion"
    assert outputs["confidence_info"] == {
        "error": "No logprobs available - model/provider may not support confidence calculation",
        "confidence_score": None,
        "mean_entropy": None,
        "total_entropy": None,
    }
    assert model["inputs"]["messages"] == [
        {"role": "user", "content": "Tell me a joke about the weather"}
    ]
    # Arcee's model step also shows the run and what the run had when it started.
    assert model["inputs"]["run_id"] == document["id"]
    assert model["inputs"]["input_data"]["prompt"] == "Tell me a joke about the weather"
    assert share["inputs"]["input_data"]["model"] == model["outputs"]

    assert share["status"] == "completed"
    assert share["inputs"]["app_name"] == "slack"
    assert share["inputs"]["input_mapping"] == {
        "channel": "orchestra-demo",
        "text": outputs["content"],
    }
    result = share["outputs"]["result"]
    assert result["successful"] is True and result["error"] is None
    assert result["data"]["ok"] is True
    assert result["data"]["channel"] == channel_id("orchestra-demo")
    assert [call.arguments.get("text") for call in sent] == [outputs["content"]]
    assert TOKEN not in done.stdout
