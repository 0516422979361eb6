"""Integration steps through the real engine and store (SQLite and PostgreSQL), against the
Slack, webhook and SMTP stand-ins: what reaches each app, what the steps record (seed
000's shape), retries on Slack's rate limit, and no credential anywhere in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from stepline.engine import Engine
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import default_registry
from stepline.records import ErrorCategory, RunRecord, RunStatus, StepRecord, StepStatus
from stepline.secrets.source import EnvironmentSecrets
from stepline.store import Store
from stepline.webhook_signature import verify
from stepline.worker import Worker
from support.database import database_bytes
from support.engine import metadata, submit_run
from support.slack_api import Reply, SlackStandIn, channel_id
from support.smtp_server import SmtpStandIn
from support.tls import TlsFiles, make_tls_files
from support.webhook_receiver import Reply as HookReply
from support.webhook_receiver import WebhookReceiver

SLACK_TOKEN = "xoxb-engine-7b1d9e4a"
SIGNING_SECRET = "whsec_engine_2c8f51"
SMTP_USER, SMTP_PASSWORD = "robot@acme.io", "smtp-engine-pw-e40a"
CREDENTIALS = (SLACK_TOKEN, SIGNING_SECRET, SMTP_PASSWORD)

INPUTS = {"order_id": 42, "customer": "Ada", "channel": "orchestra-demo"}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=SLACK_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SIGNING_SECRET) as receiver:
        yield receiver


@pytest.fixture
def smtp(tls: TlsFiles) -> Iterator[SmtpStandIn]:
    with SmtpStandIn(users={SMTP_USER: SMTP_PASSWORD}, tls_context=tls.server_context()) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def notify(slack: SlackStandIn, hooks: WebhookReceiver, smtp: SmtpStandIn, tls: TlsFiles) -> Any:
    return {
        "name": "notify-order",
        "inputs": {"type": "object"},
        "nodes": [
            {
                "id": "compose",
                "type": "reshape",
                "config": {
                    "output": {"text": "Order {{ inputs.order_id }} for {{ inputs.customer }}"}
                },
            },
            {
                "id": "slack_integration",
                "type": "integration",
                "config": {
                    "app": "slack",
                    "action": "chat.postMessage",
                    "slack": {"token": "{{ secrets.SLACK_BOT_TOKEN }}", "base_url": slack.base_url},
                    "input_mapping": {
                        "channel": "{{ inputs.channel }}",
                        "text": "{{ nodes.compose.output.text }}",
                    },
                },
            },
            {
                "id": "hook",
                "type": "integration",
                "config": {
                    "app": "webhook",
                    "webhook": {"url": hooks.url, "signing_secret": "{{ secrets.WEBHOOK_SECRET }}"},
                    "input_mapping": {
                        "order": "{{ inputs.order_id }}",
                        "slack_ts": "{{ nodes.slack_integration.output.result.data.ts }}",
                    },
                },
            },
            {
                "id": "mail",
                "type": "integration",
                "config": {
                    "app": "email",
                    "email": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "username": SMTP_USER,
                        "password": "{{ secrets.SMTP_PASSWORD }}",
                        "ca_cert": tls.ca_pem,
                    },
                    "input_mapping": {
                        "from": SMTP_USER,
                        "to": "ops@acme.io",
                        "subject": "{{ nodes.compose.output.text }}",
                        "text": "Posted at {{ nodes.slack_integration.output.result.data.ts }}",
                    },
                },
            },
        ],
        "edges": [
            {"from": "compose", "to": "slack_integration"},
            {"from": "slack_integration", "to": "hook"},
            {"from": "hook", "to": "mail"},
        ],
    }


async def run(
    store: Store, http: httpx.AsyncClient, definition: dict[str, Any]
) -> tuple[RunRecord, dict[str, StepRecord]]:
    secrets = EnvironmentSecrets(
        {
            "STEPLINE_SECRET_SLACK_BOT_TOKEN": SLACK_TOKEN,
            "STEPLINE_SECRET_WEBHOOK_SECRET": SIGNING_SECRET,
            "STEPLINE_SECRET_SMTP_PASSWORD": SMTP_PASSWORD,
        }
    )
    org = await store.organizations.ensure()
    registry = default_registry()
    submission = await submit_run(store, org, definition, INPUTS, registry, secrets=secrets)
    engine = Engine(store, registry, services=NodeServices(http=http), secrets=secrets)
    finished = await Worker(engine, lease_s=30).claim_and_execute(submission.run.id)
    assert finished is not None
    steps = {step.step_id: step for step in await store.steps.list(finished.id)}
    return finished, steps


async def test_slack_webhook_and_email_steps_are_on_the_record_in_seed_000s_shape(
    store: Store,
    store_url: str,
    http: httpx.AsyncClient,
    slack: SlackStandIn,
    hooks: WebhookReceiver,
    smtp: SmtpStandIn,
    tls: TlsFiles,
) -> None:
    hooks.script(HookReply(200, {"received": True, "echo": SIGNING_SECRET}))
    finished, steps = await run(store, http, notify(slack, hooks, smtp, tls))
    assert finished.status is RunStatus.completed, finished.error

    # Each app got the real credentials and the resolved message.
    (call,) = slack.calls
    assert call.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    (posted,) = slack.messages
    assert posted["text"] == "Order 42 for Ada"
    (delivery,) = hooks.deliveries
    assert delivery.accepted and delivery.payload == {"order": 42, "slack_ts": posted["ts"]}
    verify(SIGNING_SECRET, delivery.headers["X-Stepline-Signature"], delivery.body)
    (mail,) = smtp.messages
    assert mail.login == SMTP_USER and mail.tls
    assert mail.message["Subject"] == "Order 42 for Ada"

    compose = {"text": "Order 42 for Ada"}
    slack_step = steps["slack_integration"]
    slack_answer = {
        "ok": True,
        "channel": channel_id("orchestra-demo"),
        "ts": posted["ts"],
        "message": {k: v for k, v in posted.items() if k not in ("method", "channel")},
    }
    assert slack_step.status is StepStatus.completed
    assert slack_step.node_type == "integration"
    assert slack_step.inputs == {
        "app_name": "slack",
        "action": "chat.postMessage",
        "input_mapping": {"channel": "orchestra-demo", "text": "Order 42 for Ada"},
        "tool_config": {
            "tool_type": "slack",
            "base_url": slack.base_url,
            "token": "***",
            "body_encoding": "json",
        },
        "run_id": str(finished.id),
        "input_data": {**INPUTS, "compose": compose},
    }
    assert slack_step.outputs == {
        "result": {"data": slack_answer, "error": None, "successful": True}
    }
    slack_output = slack_step.outputs

    hook_step = steps["hook"]
    assert hook_step.inputs == {
        "app_name": "webhook",
        "action": "post",
        "input_mapping": {"order": 42, "slack_ts": posted["ts"]},
        "tool_config": {"tool_type": "webhook", "url": hooks.url, "signing_secret": "***"},
        "run_id": str(finished.id),
        "input_data": {**INPUTS, "compose": compose, "slack_integration": slack_output},
    }
    # The receiver echoed the secret back: the record masks it there too.
    assert hook_step.outputs == {
        "result": {
            "data": {"status_code": 200, "body": {"received": True, "echo": "***"}},
            "error": None,
            "successful": True,
        }
    }

    mail_step = steps["mail"]
    assert mail_step.inputs is not None
    assert mail_step.inputs["tool_config"] == {
        "tool_type": "email",
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "starttls",
        "username": SMTP_USER,
        "password": "***",
    }
    assert set(mail_step.inputs["input_data"]) == {*INPUTS, "compose", "slack_integration", "hook"}
    assert mail_step.outputs is not None
    assert mail_step.outputs["result"]["data"]["server_reply"] == "2.0.0 Ok: queued as STANDIN0001"
    assert mail_step.outputs["result"]["data"]["message_id"] == mail.message["Message-ID"]

    stored = await database_bytes(store_url)
    assert b"notify-order" in stored  # the search looks where the run is
    for credential in CREDENTIALS:
        assert credential.encode() not in stored
        for step in steps.values():
            assert credential not in step.model_dump_json()


async def test_slacks_rate_limit_is_retried_after_the_time_it_asks(
    store: Store,
    http: httpx.AsyncClient,
    slack: SlackStandIn,
    hooks: WebhookReceiver,
    smtp: SmtpStandIn,
    tls: TlsFiles,
) -> None:
    slack.script(
        "chat.postMessage",
        Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}),
    )
    definition = notify(slack, hooks, smtp, tls)
    definition["nodes"][1]["retry"] = {"max_attempts": 2, "initial_delay_s": 0, "jitter": False}
    finished, steps = await run(store, http, definition)

    assert finished.status is RunStatus.completed, finished.error
    step = steps["slack_integration"]
    assert step.retry_count == 1
    first, second = step.attempts
    assert first.status is StepStatus.error
    assert first.error_category is ErrorCategory.quota
    assert first.error == (
        "Slack chat.postMessage failed: HTTP 429 Too Many Requests (ratelimited)"
    )
    assert first.completed_at is not None
    assert (second.started_at - first.completed_at).total_seconds() >= 0.95
    assert second.status is StepStatus.completed
    assert len(slack.calls_of("chat.postMessage")) == 2 and len(slack.messages) == 1


async def test_slack_ok_false_fails_the_step_with_slacks_answer_on_record(
    store: Store,
    http: httpx.AsyncClient,
    slack: SlackStandIn,
    hooks: WebhookReceiver,
    smtp: SmtpStandIn,
    tls: TlsFiles,
) -> None:
    definition = notify(slack, hooks, smtp, tls)
    definition["nodes"][1]["retry"] = {"max_attempts": 3, "initial_delay_s": 0}
    definition["nodes"][1]["config"]["input_mapping"]["channel"] = "no-such-channel"
    finished, steps = await run(store, http, definition)

    assert finished.status is RunStatus.failed
    step = steps["slack_integration"]
    assert step.status is StepStatus.error
    assert step.error == "Slack chat.postMessage failed: channel_not_found"
    assert step.error_category is ErrorCategory.permanent
    assert step.error_details is not None
    assert step.error_details.error_code == "channel_not_found"
    assert len(step.attempts) == 1  # permanent: not retried
    assert step.outputs is None
    assert metadata(step) == {
        "result": {
            "data": {"ok": False, "error": "channel_not_found"},
            "error": "channel_not_found",
            "successful": False,
        }
    }
    assert steps["hook"].status is StepStatus.skipped
    assert hooks.deliveries == [] and smtp.messages == []


async def test_inside_a_loop_input_data_holds_what_the_iteration_sees(
    store: Store, http: httpx.AsyncClient, hooks: WebhookReceiver
) -> None:
    definition = {
        "name": "notify-each",
        "inputs": {"type": "object"},
        "nodes": [
            {"id": "batch", "type": "reshape", "config": {"output": {"size": 2}}},
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": ["a", "b"]},
                "body": {
                    "nodes": [
                        {
                            "id": "label",
                            "type": "reshape",
                            "config": {"output": "{{ loop.item }}!"},
                        },
                        {
                            "id": "send",
                            "type": "integration",
                            "config": {
                                "app": "webhook",
                                "webhook": {
                                    "url": hooks.url,
                                    "signing_secret": "{{ secrets.WEBHOOK_SECRET }}",
                                },
                                "input_mapping": {"label": "{{ nodes.label.output }}"},
                            },
                        },
                    ],
                    "edges": [{"from": "label", "to": "send"}],
                },
            },
        ],
        "edges": [{"from": "batch", "to": "each"}],
    }
    finished, steps = await run(store, http, definition)

    assert finished.status is RunStatus.completed, finished.error
    assert [d.payload for d in hooks.accepted] == [{"label": "a!"}, {"label": "b!"}]
    for index, item in enumerate("ab"):
        step = steps[f"each_iter_{index}_send"]
        assert step.inputs is not None
        assert step.inputs["input_data"] == {**INPUTS, "batch": {"size": 2}, "label": f"{item}!"}
