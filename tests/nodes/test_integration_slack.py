"""The integration kind's Slack app, against the Slack Web API stand-in on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.nodes.integration import IntegrationConfig, IntegrationNode
from stepline.records import ErrorCategory, ErrorStage
from support.integration_steps import perform, perform_error
from support.slack_api import Reply, SlackStandIn, channel_id

TOKEN = "xoxb-test-4821-secret"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as stand_in:
        yield stand_in


def slack_step(
    base_url: str, action: str, mapping: dict[str, Any], **settings: Any
) -> dict[str, Any]:
    return {
        "app": "slack",
        "action": action,
        "slack": {"token": TOKEN, "base_url": base_url, **settings},
        "input_mapping": mapping,
    }


async def test_post_message_answers_with_slacks_reply(slack: SlackStandIn) -> None:
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "hi"})
    output = await perform(config)

    (call,) = slack.calls
    assert call.method == "chat.postMessage"
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(call.raw) == {"channel": "general", "text": "hi"}
    (posted,) = slack.messages
    assert posted["channel"] == channel_id("general") and posted["text"] == "hi"
    # The output is seed 000's shape, with Slack's answer as it came.
    assert output == {
        "result": {
            "data": {
                "ok": True,
                "channel": channel_id("general"),
                "ts": posted["ts"],
                "message": {k: v for k, v in posted.items() if k not in ("method", "channel")},
            },
            "error": None,
            "successful": True,
        }
    }
    assert "warning" not in output["result"]["data"]  # the charset was sent


async def test_arcees_action_name_calls_the_method_it_stands_for(slack: SlackStandIn) -> None:
    mapping = {"channel": "orchestra-demo", "text": "Why was the weather forecast sad?"}
    config = slack_step(slack.base_url, "SLACK_SHARE_A_ME_MESSAGE_IN_A_CHANNEL", mapping)
    output = await perform(config)

    (call,) = slack.calls
    assert call.method == "chat.meMessage"
    (posted,) = slack.messages
    assert output["result"]["data"] == {
        "ok": True,
        "channel": channel_id("orchestra-demo"),
        "ts": posted["ts"],
    }


async def test_ok_false_is_a_permanent_error_carrying_the_slack_code(slack: SlackStandIn) -> None:
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "nowhere", "text": "x"})
    error = await perform_error(config)

    assert error.message == "Slack chat.postMessage failed: channel_not_found"
    assert error.category is ErrorCategory.permanent
    assert error.stage is ErrorStage.execution
    assert error.details.error_code == "channel_not_found"
    assert error.details.type == "SlackApiError"
    assert error.metadata == {
        "result": {
            "data": {"ok": False, "error": "channel_not_found"},
            "error": "channel_not_found",
            "successful": False,
        }
    }
    assert slack.messages == []


async def test_a_wrong_token_is_invalid_auth(slack: SlackStandIn) -> None:
    config = slack_step(slack.base_url, "auth.test", {})
    config["slack"]["token"] = "xoxb-someone-else"
    error = await perform_error(config)
    assert error.message == "Slack auth.test failed: invalid_auth"
    assert error.category is ErrorCategory.permanent


async def test_http_429_is_quota_and_keeps_retry_after(slack: SlackStandIn) -> None:
    slack.script(
        "chat.postMessage",
        Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}),
    )
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "x"})
    error = await perform_error(config)

    assert error.category is ErrorCategory.quota
    assert error.retry_after_s == 7
    assert (
        error.message == "Slack chat.postMessage failed: HTTP 429 Too Many Requests (ratelimited)"
    )
    assert error.details.error_code == "ratelimited"
    assert slack.messages == []


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("ratelimited", ErrorCategory.quota),
        ("rate_limited", ErrorCategory.quota),
        ("internal_error", ErrorCategory.transient),
        ("service_unavailable", ErrorCategory.transient),
        ("not_in_channel", ErrorCategory.permanent),
        ("is_archived", ErrorCategory.permanent),
    ],
)
async def test_slack_error_codes_have_their_category(
    slack: SlackStandIn, code: str, category: ErrorCategory
) -> None:
    slack.script("chat.postMessage", Reply(200, {"ok": False, "error": code}))
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "x"})
    error = await perform_error(config)
    assert error.category is category
    assert error.message.endswith(f"failed: {code}")


async def test_missing_scope_names_the_scope_needed(slack: SlackStandIn) -> None:
    answer = {
        "ok": False,
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": "users:read",
    }
    slack.script("chat.postMessage", Reply(200, answer))
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "x"})
    error = await perform_error(config)
    assert error.message == (
        "Slack chat.postMessage failed: missing_scope (needed: chat:write; provided: users:read)"
    )


@pytest.mark.parametrize(
    ("reply", "category", "code"),
    [
        (Reply(500, {"ok": False, "error": "fatal_error"}), ErrorCategory.transient, "fatal_error"),
        (Reply(503, "upstream down"), ErrorCategory.transient, "http_503"),
        (Reply(400, "bad request"), ErrorCategory.permanent, "http_400"),
        (Reply(404, None), ErrorCategory.permanent, "http_404"),
    ],
)
async def test_http_failures_are_classified(
    slack: SlackStandIn, reply: Reply, category: ErrorCategory, code: str
) -> None:
    slack.script("chat.postMessage", reply)
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "x"})
    error = await perform_error(config)
    assert error.category is category
    assert error.details.error_code == code
    assert f"HTTP {reply.status}" in error.message


async def test_an_answer_that_is_not_slacks_is_permanent(slack: SlackStandIn) -> None:
    slack.script("chat.postMessage", Reply(200, {"hello": "world"}))
    config = slack_step(slack.base_url, "chat.postMessage", {"channel": "general", "text": "x"})
    error = await perform_error(config)
    assert error.category is ErrorCategory.permanent
    assert error.details.error_code == "invalid_answer"


async def test_no_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    config = slack_step(f"http://127.0.0.1:{port}/api", "auth.test", {})
    error = await perform_error(config)
    assert error.category is ErrorCategory.transient
    assert error.message.startswith("Slack auth.test failed: ConnectError")


async def test_a_server_that_never_answers_times_out_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections queue up, and nothing ever answers them
        port = silent.getsockname()[1]
        config = slack_step(f"http://127.0.0.1:{port}/api", "auth.test", {})
        error = await perform_error(config, timeout_s=0.3)
    assert error.category is ErrorCategory.transient
    assert error.message == "Slack auth.test timed out after 0.3 s"


async def test_form_encoded_methods(slack: SlackStandIn) -> None:
    config = slack_step(
        slack.base_url,
        "conversations.list",
        {"limit": 2, "exclude_archived": True},
        body_encoding="form",
    )
    output = await perform(config)
    (call,) = slack.calls
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.arguments == {"limit": "2", "exclude_archived": "true"}
    names = [c["name"] for c in output["result"]["data"]["channels"]]
    assert names == ["general", "orchestra-demo", "alerts"]


@pytest.mark.parametrize("action", ["files.upload", "files.uploadV2"])
async def test_file_upload_runs_slacks_external_upload_flow(
    slack: SlackStandIn, action: str
) -> None:
    mapping = {
        "filename": "report.csv",
        "content": "a,b\n1,2\n",
        "title": "Report",
        "channel": channel_id("alerts"),
        "initial_comment": "Today's numbers",
    }
    output = await perform(slack_step(slack.base_url, action, mapping))

    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    ticket, complete = slack.calls
    assert ticket.arguments == {"filename": "report.csv", "length": "8"}
    assert json.loads(complete.arguments["files"]) == [{"id": "F000000001", "title": "Report"}]
    (stored,) = slack.files.values()
    assert stored["content"] == b"a,b\n1,2\n"
    assert stored["channel"] == channel_id("alerts")
    assert stored["initial_comment"] == "Today's numbers"
    assert output["result"]["data"] == {
        "ok": True,
        "files": [{"id": "F000000001", "name": "report.csv", "title": "Report"}],
    }


async def test_file_upload_of_bytes_in_base64(slack: SlackStandIn) -> None:
    data = bytes(range(256))
    mapping = {"filename": "blob.bin", "content_base64": base64.b64encode(data).decode()}
    await perform(slack_step(slack.base_url, "files.upload", mapping))
    (stored,) = slack.files.values()
    assert stored["content"] == data and stored["channel"] is None


async def test_file_upload_with_two_contents_is_refused_before_any_call(
    slack: SlackStandIn,
) -> None:
    mapping = {"filename": "x.txt", "content": "a", "content_base64": "YQ=="}
    error = await perform_error(slack_step(slack.base_url, "files.upload", mapping))
    assert error.stage is ErrorStage.input_collection
    assert error.category is ErrorCategory.permanent
    assert "either `content` or `content_base64`" in error.message
    assert slack.calls == []


async def test_a_failed_upload_step_names_the_method_that_failed(slack: SlackStandIn) -> None:
    mapping = {"filename": "x.txt", "content": "a", "channel": "general"}  # a name, not an ID
    error = await perform_error(slack_step(slack.base_url, "files.upload", mapping))
    assert error.message == "Slack files.completeUploadExternal failed: channel_not_found"


def test_recorded_inputs_hold_no_token() -> None:
    config = slack_step("https://slack.com/api", "chat.postMessage", {"channel": "c", "text": "t"})
    assert IntegrationNode().recorded_inputs(config) == {
        "app_name": "slack",
        "action": "chat.postMessage",
        "input_mapping": {"channel": "c", "text": "t"},
        "tool_config": {
            "tool_type": "slack",
            "base_url": "https://slack.com/api",
            "token": "***",
            "body_encoding": "json",
        },
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"app": "slack", "action": "chat.postMessage"}, "app 'slack' needs its `slack` settings"),
        (
            {"app": "slack", "slack": {"token": "t"}},
            "`action` is required: a Slack Web API method",
        ),
        (
            {"app": "slack", "action": "post a message", "slack": {"token": "t"}},
            "action 'post a message' is not a Slack Web API method name",
        ),
        (
            {
                "app": "slack",
                "action": "chat.postMessage",
                "slack": {"token": "t"},
                "webhook": {"url": "https://example.com"},
            },
            "`webhook` settings given, but app is 'slack'",
        ),
    ],
)
def test_config_mistakes_are_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IntegrationConfig.model_validate(config)
    assert message in str(caught.value)
