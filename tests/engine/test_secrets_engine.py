"""Secrets in a run (in-process engine, real SQLite or PostgreSQL, a real HTTP server):
nodes get the real values, the record only `***`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from stepline.engine import Engine
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, RunStatus, StepStatus
from stepline.secrets.source import EnvironmentSecrets, MissingSecrets
from stepline.store import Store
from stepline.worker import Worker
from support.engine import Transitions, submit_run
from support.http_server import LoopbackServer, loopback_server

SECRET = "sk-live-7f3a9c2e/b+x"
OTHER = "pw-0c41d9"


@pytest.fixture
def target() -> Iterator[LoopbackServer]:
    def echo(hit: int, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"received": body}

    def refuse(hit: int, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        return 401, {}, {"error": "bad token", "echo": SECRET}

    with loopback_server({"/echo": echo, "/refuse": refuse}) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def environment(**values: str) -> EnvironmentSecrets:
    return EnvironmentSecrets({f"STEPLINE_SECRET_{k}": v for k, v in values.items()})


async def run_with(
    store: Store,
    http: httpx.AsyncClient,
    definition: dict[str, Any],
    secrets: EnvironmentSecrets,
    inputs: dict[str, Any] | None = None,
    *,
    run_secrets: EnvironmentSecrets | None = None,
) -> tuple[RunRecord, Transitions]:
    """Queue with `secrets`, execute with `run_secrets` (default: the same)."""
    org = await store.organizations.ensure()
    registry = default_registry()
    submission = await submit_run(store, org, definition, inputs or {}, registry, secrets=secrets)
    observer = Transitions()
    engine = Engine(
        store,
        registry,
        services=NodeServices(http=http),
        observer=observer,
        secrets=run_secrets or secrets,
    )
    finished = await Worker(engine, lease_s=30).claim_and_execute(submission.run.id)
    assert finished is not None
    return finished, observer


def calls(url: str) -> dict[str, Any]:
    return {
        "name": "calls",
        "inputs": {"type": "object"},
        "nodes": [
            {
                "id": "call",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": url + "/echo?token={{ secrets.API_KEY }}",
                    "headers": {
                        "Authorization": "Bearer {{ secrets.API_KEY }}",
                        "X-Other": "{{ secrets.OTHER }}",
                    },
                    "json": {"in_body": "{{ secrets.API_KEY }}"},
                },
            },
            {
                "id": "shape",
                "type": "reshape",
                "config": {"output": {"key": "{{ secrets.API_KEY }}", "n": 1}},
            },
            {
                "id": "forward",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": url + "/echo",
                    "json": {"from_upstream": "{{ nodes.shape.output.key }}"},
                },
            },
            {
                "id": "refused",
                "type": "api_call",
                "on_error": "continue",
                "config": {"url": url + "/refuse", "query": {"token": "{{ secrets.API_KEY }}"}},
            },
        ],
        "edges": [
            {"from": "call", "to": "shape"},
            {"from": "shape", "to": "forward"},
            {"from": "forward", "to": "refused"},
        ],
        "output": {"key": "{{ nodes.shape.output.key }}"},
    }


async def test_nodes_get_the_values_and_the_record_only_masks(
    store: Store, http: httpx.AsyncClient, target: LoopbackServer
) -> None:
    secrets = environment(API_KEY=SECRET, OTHER=OTHER)
    run, observer = await run_with(store, http, calls(target.url), secrets)

    assert run.status is RunStatus.completed, run.error
    # On the wire: the real values, in the header, the query and the body...
    first, forwarded, refused = target.received
    assert first.headers["Authorization"] == f"Bearer {SECRET}"
    assert first.headers["X-Other"] == OTHER
    assert first.target == f"/echo?token={SECRET}"  # templated into the URL as is
    assert json.loads(first.body) == {"in_body": SECRET}
    # ...and downstream of a step whose recorded output is masked, the real output.
    assert json.loads(forwarded.body) == {"from_upstream": SECRET}
    assert parse_qs(urlsplit(refused.target).query)["token"] == [SECRET]

    # On the record: not one occurrence, in any form.
    steps = {s.step_id: s for s in await store.steps.list(run.id)}
    stored_run = await store.runs.get(run.id)
    assert stored_run is not None
    events = await store.events.list(run.id, organization_id=run.organization_id)
    texts = [s.model_dump_json() for s in steps.values()]
    texts += [stored_run.model_dump_json(), *(e.model_dump_json() for e in events)]
    texts += [s.model_dump_json() for s in observer.snapshots]
    for text in texts:
        for value in (SECRET, OTHER, quote(SECRET, safe="")):
            assert value not in text
    assert steps["call"].inputs["headers"] == {"Authorization": "***", "X-Other": "***"}
    assert steps["call"].inputs["url"].endswith("/echo?token=***")
    assert steps["shape"].outputs == {"key": "***", "n": 1}
    assert steps["refused"].status is StepStatus.error
    assert steps["refused"].error is not None and "token=***" in steps["refused"].error
    assert stored_run.output == {"key": "***"}


async def test_credential_headers_are_masked_even_when_not_secrets(
    store: Store, http: httpx.AsyncClient, target: LoopbackServer
) -> None:
    definition = {
        "name": "plain-headers",
        "inputs": {"type": "object"},
        "nodes": [
            {
                "id": "call",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": target.url + "/echo",
                    "headers": {
                        "authorization": "Bearer {{ inputs.key }}",
                        "Cookie": "session=abc",
                        "X-API-KEY": "k1",
                        "Api-Key": "k2",
                        "Proxy-Authorization": "Basic cHJveHk=",
                        "X-Request-Id": "visible",
                    },
                },
            }
        ],
    }
    run, _ = await run_with(store, http, definition, environment(), {"key": "from-input"})

    assert run.status is RunStatus.completed, run.error
    (sent,) = target.received
    assert sent.headers["authorization"] == "Bearer from-input"
    assert sent.headers["Cookie"] == "session=abc"
    (step,) = await store.steps.list(run.id)
    assert step.inputs["headers"] == {
        "authorization": "***",
        "Cookie": "***",
        "X-API-KEY": "***",
        "Api-Key": "***",
        "Proxy-Authorization": "***",
        "X-Request-Id": "visible",
    }


async def test_a_secret_passed_as_an_input_is_recorded_masked(
    store: Store, http: httpx.AsyncClient, target: LoopbackServer
) -> None:
    definition = calls(target.url)
    run, _ = await run_with(
        store, http, definition, environment(API_KEY=SECRET, OTHER=OTHER), {"note": SECRET}
    )
    assert run.inputs == {"note": "***"}


async def test_an_unset_secret_stops_the_run_before_it_is_queued(
    store: Store, http: httpx.AsyncClient, target: LoopbackServer
) -> None:
    with pytest.raises(MissingSecrets) as caught:
        await run_with(store, http, calls(target.url), environment(API_KEY=SECRET))
    references = caught.value.references
    assert {(ref.name, ref.node_id, ref.path) for ref in references} == {
        ("OTHER", "call", '$.nodes[0].config.headers["X-Other"]')
    }
    assert "node 'call'" in str(caught.value) and "'OTHER'" in str(caught.value)
    assert await store.runs.list() == []


async def test_a_secret_gone_by_the_time_the_run_starts_fails_it_clearly(
    store: Store, http: httpx.AsyncClient, target: LoopbackServer
) -> None:
    run, _ = await run_with(
        store,
        http,
        calls(target.url),
        environment(API_KEY=SECRET, OTHER=OTHER),
        run_secrets=environment(OTHER=OTHER),
    )
    assert run.status is RunStatus.failed
    assert run.error is not None
    assert "secret 'API_KEY'" in run.error and "node 'call'" in run.error
    assert target.received == []
    assert await store.steps.list(run.id) == []  # nothing ran
