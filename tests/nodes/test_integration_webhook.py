"""The integration kind's webhook app, against a receiver on 127.0.0.1 that checks the
signature from the documented scheme alone."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stepline.nodes.integration import IntegrationNode
from stepline.records import ErrorCategory
from stepline.webhook_signature import verify
from support.integration_steps import context, perform, perform_error
from support.webhook_receiver import Reply, WebhookReceiver

SECRET = "whsec_4f0c2b7e91"
PAYLOAD = {"event": "order.paid", "order": {"id": 42, "amount": 700}, "note": "für Ada"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as hooks:
        yield hooks


def webhook_step(url: str, payload: Any = None, **settings: Any) -> dict[str, Any]:
    return {
        "app": "webhook",
        "webhook": {"url": url, **settings},
        "input_mapping": PAYLOAD if payload is None else payload,
    }


async def test_a_signed_delivery_is_accepted_by_the_receiver(receiver: WebhookReceiver) -> None:
    output = await perform(webhook_step(receiver.url, signing_secret=SECRET))

    (delivery,) = receiver.deliveries
    assert delivery.accepted, delivery.reason
    assert delivery.payload == PAYLOAD
    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"
    assert output == {
        "result": {
            "data": {"status_code": 200, "body": {"received": True}},
            "error": None,
            "successful": True,
        }
    }
    # stepline's own verify (what a Python receiver would use) agrees.
    header = delivery.headers["X-Stepline-Signature"]
    assert abs(verify(SECRET, header, delivery.body) - time.time()) < 60


async def test_the_signature_covers_the_timestamp_and_the_raw_body(
    receiver: WebhookReceiver,
) -> None:
    await perform(webhook_step(receiver.url, signing_secret=SECRET))
    (delivery,) = receiver.deliveries
    t, v1 = (part.split("=", 1)[1] for part in delivery.headers["X-Stepline-Signature"].split(","))
    assert (
        v1
        == hmac.new(SECRET.encode(), f"{t}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    )
    assert delivery.body == json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()


async def test_a_replayed_delivery_is_refused(receiver: WebhookReceiver) -> None:
    await perform(webhook_step(receiver.url, signing_secret=SECRET))
    (first,) = receiver.deliveries
    replay = httpx.post(
        receiver.url,
        content=first.body,
        headers={
            "Content-Type": "application/json",
            "X-Stepline-Signature": first.headers["X-Stepline-Signature"],
        },
    )
    assert replay.status_code == 400
    assert replay.json() == {"error": "replayed: this signature was already accepted"}


async def test_an_old_delivery_is_refused_even_with_a_good_signature(
    receiver: WebhookReceiver,
) -> None:
    body = json.dumps(PAYLOAD).encode()
    old = int(time.time()) - 3600
    digest = hmac.new(SECRET.encode(), f"{old}.".encode() + body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        receiver.url, content=body, headers={"X-Stepline-Signature": f"t={old},v1={digest}"}
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "timestamp outside the tolerance"}


async def test_a_forged_signature_is_refused_and_the_step_fails_permanently(
    receiver: WebhookReceiver,
) -> None:
    error = await perform_error(webhook_step(receiver.url, signing_secret="whsec_guessed"))
    (delivery,) = receiver.deliveries
    assert not delivery.accepted and delivery.reason == "signature mismatch"
    assert error.category is ErrorCategory.permanent
    assert error.message == f"webhook POST {receiver.url} answered HTTP 400 Bad Request"
    assert error.metadata == {
        "result": {
            "data": {"status_code": 400, "body": {"error": "signature mismatch"}},
            "error": "http_400",
            "successful": False,
        }
    }


async def test_an_unsigned_delivery_has_no_signature_and_a_signing_receiver_refuses_it(
    receiver: WebhookReceiver,
) -> None:
    await perform_error(webhook_step(receiver.url))
    (delivery,) = receiver.deliveries
    assert "X-Stepline-Signature" not in delivery.headers
    assert delivery.reason == "no X-Stepline-Signature header"


async def test_the_delivery_id_is_the_same_for_each_try_of_a_step() -> None:
    with WebhookReceiver() as receiver:  # unsigned: two tries in one second sign alike
        config = webhook_step(receiver.url)
        ctx = context(config)
        await IntegrationNode().run(ctx)
        await IntegrationNode().run(ctx)  # a retry of the same step
        await perform(config)  # another step
    first, again, other = (d.headers["X-Stepline-Delivery"] for d in receiver.deliveries)
    assert first == again != other
    assert uuid.UUID(first).version == 5


async def test_extra_headers_are_sent_but_cannot_replace_the_signature(
    receiver: WebhookReceiver,
) -> None:
    headers = {"X-Tenant": 7, "X-Stepline-Signature": "t=1,v1=forged"}
    await perform(webhook_step(receiver.url, signing_secret=SECRET, headers=headers))
    (delivery,) = receiver.deliveries
    assert delivery.accepted and delivery.headers["X-Tenant"] == "7"


@pytest.mark.parametrize(
    ("reply", "category", "retry_after_s"),
    [
        (Reply(429, {"slow": "down"}, {"Retry-After": "12"}), ErrorCategory.quota, 12),
        (Reply(503, {"error": "busy"}), ErrorCategory.transient, None),
        (Reply(500, None), ErrorCategory.transient, None),
        (Reply(404, {"error": "no such hook"}), ErrorCategory.permanent, None),
        (Reply(302, None, {"Location": "https://example.com/"}), ErrorCategory.permanent, None),
    ],
)
async def test_receiver_failures_are_classified(
    receiver: WebhookReceiver,
    reply: Reply,
    category: ErrorCategory,
    retry_after_s: float | None,
) -> None:
    receiver.script(reply)
    error = await perform_error(webhook_step(receiver.url, signing_secret=SECRET))
    assert error.category is category
    assert error.retry_after_s == retry_after_s
    assert error.details.error_code == f"http_{reply.status}"
    assert error.metadata is not None
    assert error.metadata["result"]["data"] == {"status_code": reply.status, "body": reply.body}
    assert len(receiver.deliveries) == 1  # a redirect is not followed


async def test_a_2xx_other_than_200_is_a_delivery(receiver: WebhookReceiver) -> None:
    receiver.script(Reply(202, {"queued": True}))
    output = await perform(webhook_step(receiver.url, signing_secret=SECRET))
    assert output["result"]["data"] == {"status_code": 202, "body": {"queued": True}}


async def test_no_receiver_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await perform_error(webhook_step(f"http://127.0.0.1:{port}/hooks"))
    assert error.category is ErrorCategory.transient
    assert error.details.error_code == "http_request"


def test_recorded_inputs_hold_no_secret_and_no_credential_header() -> None:
    config = webhook_step(
        "https://hooks.example.com/in",
        {"a": 1},
        signing_secret=SECRET,
        headers={"Authorization": "Bearer t0k3n", "X-Tenant": "acme"},
    )
    assert IntegrationNode().recorded_inputs(config) == {
        "app_name": "webhook",
        "action": "post",
        "input_mapping": {"a": 1},
        "tool_config": {
            "tool_type": "webhook",
            "url": "https://hooks.example.com/in",
            "headers": {"Authorization": "***", "X-Tenant": "acme"},
            "signing_secret": "***",
        },
    }
