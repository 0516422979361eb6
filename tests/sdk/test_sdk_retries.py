"""Retries, backoff and broken connections, on both faces, against a scripted loopback
server (`scripted`): 503s and 429s, Retry-After, connection resets, an event stream cut
short, and which calls may repeat at all."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest
from faces import Connect
from scripted import RESET, Reply, envelope, failing, scripted_server

from stepline import errors
from stepline.sdk import RateLimitError, Run, ServerError, TransportError, UnavailableError
from stepline.sdk._http import RetryPolicy, retry_after_seconds
from support.server import free_port

NOW = "2026-01-01T00:00:00+00:00"
WORKFLOW_ID = str(uuid.uuid4())
WORKFLOW_PATH = f"/v1/workflows/{WORKFLOW_ID}"
RUNS_PATH = f"{WORKFLOW_PATH}/runs"
EVENTS_PATH = f"{RUNS_PATH}/{uuid.uuid4()}/events"


def workflow_json() -> dict[str, Any]:
    return {
        "id": WORKFLOW_ID,
        "organization_id": str(uuid.uuid4()),
        "name": "scripted",
        "latest_version": 1,
        "created_at": NOW,
        "updated_at": NOW,
        "definition": {},
    }


def run_json() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "workflow_id": WORKFLOW_ID,
        "workflow_version": 1,
        "organization_id": str(uuid.uuid4()),
        "status": "queued",
        "created_at": NOW,
        "updated_at": NOW,
    }


WORKFLOW = Reply(200, workflow_json())
BUSY = envelope(503, "unavailable")


def busy(hit: int) -> Reply:
    """A 503 whose request id names the try."""
    return envelope(503, "unavailable", f"req-{hit}")


def test_idempotent_calls_are_retried_on_503_until_they_succeed(connect: Connect) -> None:
    with scripted_server({WORKFLOW_PATH: failing(2, BUSY, WORKFLOW)}) as server:
        with connect(server.url, "k") as sdk:
            assert str(sdk.workflows.get(WORKFLOW_ID).id) == WORKFLOW_ID
        assert server.hits[WORKFLOW_PATH] == 3


def test_retries_stop_after_max_retries_with_the_last_error(connect: Connect) -> None:
    with scripted_server({WORKFLOW_PATH: busy}) as server:
        with connect(server.url, "k", max_retries=2) as sdk, pytest.raises(ServerError) as failed:
            sdk.workflows.get(WORKFLOW_ID)
        assert server.hits[WORKFLOW_PATH] == 3
    assert isinstance(failed.value, UnavailableError) and isinstance(
        failed.value, errors.Unavailable
    )
    assert failed.value.status == 503 and failed.value.request_id == "req-3"


def test_backoff_doubles_between_tries(connect: Connect) -> None:
    with scripted_server({WORKFLOW_PATH: failing(3, BUSY, WORKFLOW)}) as server:
        with connect(server.url, "k") as sdk:
            sdk.workflows.get(WORKFLOW_ID)
        arrivals = server.arrivals(WORKFLOW_PATH)
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    # 0.25 s doubled at each try, less a jitter of at most half of it
    lowest = [0.125, 0.25, 0.5]
    assert all(gap >= low - 0.01 for gap, low in zip(gaps, lowest, strict=True)), gaps
    assert gaps[2] < 2.5


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_waits_as_long_as_retry_after_says(connect: Connect, status: int) -> None:
    refusal = envelope(status, "busy", "", **{"Retry-After": "1"})
    with scripted_server({WORKFLOW_PATH: failing(1, refusal, WORKFLOW)}) as server:
        with connect(server.url, "k") as sdk:
            started = time.monotonic()
            sdk.workflows.get(WORKFLOW_ID)
            assert time.monotonic() - started >= 0.95
        assert server.hits[WORKFLOW_PATH] == 2


def test_a_429_past_the_retries_is_a_rate_limit_error(connect: Connect) -> None:
    refusal = envelope(429, "rate_limited", "r", **{"Retry-After": "0"})
    with scripted_server({WORKFLOW_PATH: lambda hit: refusal}) as server:
        with connect(server.url, "k", max_retries=1) as sdk, pytest.raises(RateLimitError) as late:
            sdk.workflows.get(WORKFLOW_ID)
    assert late.value.status == 429 and isinstance(late.value, errors.Unavailable)


def test_a_connection_reset_is_retried_for_an_idempotent_call(connect: Connect) -> None:
    with scripted_server({WORKFLOW_PATH: failing(2, RESET, WORKFLOW)}) as server:
        with connect(server.url, "k") as sdk:
            assert str(sdk.workflows.get(WORKFLOW_ID).id) == WORKFLOW_ID
        assert server.hits[WORKFLOW_PATH] == 3


def test_a_reset_start_of_a_run_is_not_repeated(connect: Connect) -> None:
    """Without an idempotency key the run may have started: the error is the caller's."""
    with scripted_server({RUNS_PATH: failing(1, RESET, Reply(202, run_json()))}) as server:
        with connect(server.url, "k") as sdk, pytest.raises(TransportError) as broken:
            sdk.runs.create(WORKFLOW_ID, {"a": 1})
        assert server.hits[RUNS_PATH] == 1
    assert isinstance(broken.value, errors.Unavailable) and server.url in broken.value.message


def test_starting_a_run_is_retried_only_with_an_idempotency_key(connect: Connect) -> None:
    with scripted_server({RUNS_PATH: failing(2, BUSY, Reply(202, run_json()))}) as server:
        with connect(server.url, "k") as sdk:
            with pytest.raises(ServerError):
                sdk.runs.create(WORKFLOW_ID, {"a": 1})
            assert server.hits[RUNS_PATH] == 1  # not retried: it might have started a run
            run = sdk.runs.create(WORKFLOW_ID, {"a": 1}, idempotency_key="once")
            assert isinstance(run, Run) and server.hits[RUNS_PATH] == 3
    keys = [r.headers.get("Idempotency-Key") for r in server.received]
    assert keys == [None, "once", "once"]


def test_an_unreachable_server_is_a_transport_error(connect: Connect) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with connect(url, "stp_x", max_retries=1) as nowhere, pytest.raises(TransportError) as broken:
        nowhere.workflows.get(uuid.uuid4())
    assert url in broken.value.message and "cannot reach" in broken.value.message
    assert isinstance(broken.value, errors.Unavailable) and broken.value.exit_code == 1
    assert time.monotonic() - started < 5


def sse(event_id: int, event_type: str) -> bytes:
    return f'id: {event_id}\nevent: {event_type}\ndata: {{"status": "x"}}\n\n'.encode()


def test_an_event_stream_resumes_after_a_broken_connection(connect: Connect) -> None:
    """The first answer promises more than it sends and drops; the stream asks again from
    the last event it handed out."""
    first = Reply(200, sse(1, "run.running") + sse(2, "step.running"), cut=100)
    then = Reply(200, b": keep-alive\n\n" + sse(3, "run.completed"))
    with scripted_server({EVENTS_PATH: failing(1, first, then)}) as server:
        with connect(server.url, "k") as sdk:
            workflow_id, _, run_id = EVENTS_PATH.split("/")[3:6]
            events = list(sdk.runs.events(workflow_id, run_id))
    assert [(e.id, e.type) for e in events] == [
        (1, "run.running"),
        (2, "step.running"),
        (3, "run.completed"),
    ]
    assert [r.headers.get("Last-Event-ID") for r in server.received] == [None, "2"]


def test_an_event_stream_broken_every_time_gives_up(connect: Connect) -> None:
    cut = Reply(200, b"", cut=100)
    with scripted_server({EVENTS_PATH: lambda hit: cut}) as server:
        with connect(server.url, "k", max_retries=2) as sdk, pytest.raises(TransportError):
            workflow_id, _, run_id = EVENTS_PATH.split("/")[3:6]
            list(sdk.runs.events(workflow_id, run_id))
        assert server.hits[EVENTS_PATH] == 3


# -- the policy as data ------------------------------------------------------------------


def test_retry_after_reads_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("-1") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (retry_after_seconds(later) or 0) <= 30


def test_a_retry_after_past_the_cap_waits_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=5)
    response = httpx.Response(503, headers={"Retry-After": "3600"})
    assert policy.delay(0, response) == 5
    assert 0.125 <= policy.delay(0) <= 0.25 and policy.delay(10) <= policy.max_delay
