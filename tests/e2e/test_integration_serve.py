"""examples/order-notify.yaml through a real `stepline serve` (SQLite and PostgreSQL), with
its secrets set over the API, against the Slack stand-in and a signature-checking webhook
receiver: the steps are served in seed 000's shape, and neither the bot token nor the
signing secret is in the database, any response about the run, or the server's log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.database import database_bytes
from support.server import ServeProcess, start_server
from support.slack_api import SlackStandIn, channel_id
from support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order-notify.yaml"
SLACK_TOKEN = "xoxb-serve-0d3a7f19"
SIGNING_SECRET = "whsec_serve_b6e2c4"


@pytest.fixture
def server(tmp_path: Path, empty_database_url: str) -> Iterator[ServeProcess]:
    process = start_server(
        tmp_path / "home",
        env={"STEPLINE_DATABASE_URL": empty_database_url, "STEPLINE_LOG_LEVEL": "DEBUG"},
    )
    try:
        yield process
    finally:
        process.stop()


def test_the_order_notify_example_over_http(server: ServeProcess, empty_database_url: str) -> None:
    with (
        SlackStandIn(token=SLACK_TOKEN) as slack,
        WebhookReceiver(secret=SIGNING_SECRET) as hooks,
        httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=60,
        ) as http,
    ):
        for name, value in (
            ("SLACK_BOT_TOKEN", SLACK_TOKEN),
            ("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET),
        ):
            assert http.put(f"/v1/secrets/{name}", json={"value": value}).is_success
        created = http.post("/v1/workflows", json=yaml.safe_load(EXAMPLE.read_text()))
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        inputs = {
            "order_id": 42,
            "customer": "Ada",
            "amount": 700,
            "slack_api": slack.base_url,
            "webhook_url": hooks.url,
        }
        started = http.post(
            f"/v1/workflows/{workflow_id}/runs?wait=true&timeout_s=120", json={"inputs": inputs}
        )
        assert started.status_code == 200, started.text
        run = started.json()
        assert run["status"] == "completed", run["error"]
        served = http.get(f"/v1/workflows/{workflow_id}/runs/{run['id']}/steps?limit=1000")
        assert served.status_code == 200, served.text
        texts = [started.text, served.text]

    (posted,) = slack.messages
    assert posted["text"] == "Order 42 from Ada: 700 EUR"
    assert slack.calls[0].headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    (delivery,) = hooks.deliveries
    assert delivery.accepted, delivery.reason
    assert delivery.payload == {
        "event": "order.notified",
        "order_id": 42,
        "slack": {"channel": channel_id("general"), "ts": posted["ts"]},
    }
    assert run["output"] == {"slack_ts": posted["ts"], "webhook_status": 200}

    steps: dict[str, Any] = {step["step_id"]: step for step in served.json()["data"]}
    slack_step = steps["slack_post"]
    assert slack_step["node_type"] == "integration"
    assert slack_step["inputs"] == {
        "app_name": "slack",
        "action": "chat.postMessage",
        "input_mapping": {"channel": "general", "text": "Order 42 from Ada: 700 EUR"},
        "tool_config": {
            "tool_type": "slack",
            "base_url": slack.base_url,
            "token": "***",
            "body_encoding": "json",
        },
        "run_id": run["id"],
        "input_data": {**inputs, "summary": {"text": "Order 42 from Ada: 700 EUR"}},
    }
    result = slack_step["outputs"]["result"]
    assert result["successful"] is True and result["error"] is None
    assert result["data"]["ok"] is True and result["data"]["ts"] == posted["ts"]
    hook_result = steps["order_webhook"]["outputs"]["result"]
    assert hook_result == {
        "data": {"status_code": 200, "body": {"received": True}},
        "error": None,
        "successful": True,
    }
    assert steps["order_webhook"]["inputs"]["tool_config"]["signing_secret"] == "***"

    log = server.log()
    server.stop()
    stored = asyncio.run(database_bytes(empty_database_url))
    assert b"order-notify" in stored
    for credential in (SLACK_TOKEN, SIGNING_SECRET):
        assert credential.encode() not in stored
        assert credential not in log
        for text in texts:
            assert credential not in text
