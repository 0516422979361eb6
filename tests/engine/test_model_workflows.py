"""Model, classifier and extract nodes in real runs (in-process engine, real SQLite or
PostgreSQL, the stand-in provider): what each step records, the provider's key and the
secrets in messages kept off the record (to the database file's bytes), retries by the
error's category, and spend counted also for a step that failed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from stepline.engine import Engine
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import default_registry
from stepline.providers.client import ClientPool
from stepline.records import RunRecord, RunStatus, StepRecord, StepStatus
from stepline.secrets.source import EnvironmentSecrets, MissingSecrets
from stepline.settings import get_settings
from stepline.spec.validate import SecretReference
from stepline.store import Store
from stepline.worker import Worker
from support.engine import metadata, submit_run
from support.model_nodes import KEY, KEY_SECRET, MODEL
from support.openai_server import Answer, StandIn, openai_stand_in, rate_limited

TOPIC_SECRET = "hush-7c1d/q+z"
"""A secret a message reads: the provider gets it, the record never."""

SEED_000 = (
    "Why was the weather forecast sad?\n\nBecause it had a lot of problems and was feeling a "
    'little "forecast-ticular."'
)


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture
def configured(server: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stand-in as provider `local` of the configuration file (STEPLINE_CONFIG)."""
    path = tmp_path / "stepline.toml"
    path.write_text(
        f"""
[providers.local]
base_url = "{server.base_url}"
api_key = "{{{{ secrets.{KEY_SECRET} }}}}"
default_model = "{MODEL}"

[providers.local.prices."{MODEL}"]
prompt = 0.15
completion = 0.6
"""
    )
    monkeypatch.setenv("STEPLINE_CONFIG", str(path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    clients = ClientPool()
    yield clients
    await clients.aclose()


def secrets(**values: str) -> EnvironmentSecrets:
    return EnvironmentSecrets({f"STEPLINE_SECRET_{k}": v for k, v in values.items()})


ALL_SECRETS = secrets(**{KEY_SECRET: KEY, "TOPIC_SECRET": TOPIC_SECRET})


async def run(
    store: Store,
    pool: ClientPool,
    definition: dict[str, Any],
    inputs: dict[str, Any] | None = None,
) -> tuple[RunRecord, dict[str, StepRecord]]:
    org = await store.organizations.ensure()
    registry = default_registry()
    submission = await submit_run(
        store, org, definition, inputs or {}, registry, secrets=ALL_SECRETS
    )
    engine = Engine(store, registry, services=NodeServices(llm=pool), secrets=ALL_SECRETS)
    finished = await Worker(engine, lease_s=30).claim_and_execute(submission.run.id)
    assert finished is not None
    stored = await store.runs.get(finished.id)
    assert stored is not None
    return stored, {s.step_id: s for s in await store.steps.list(finished.id)}


def triage() -> dict[str, Any]:
    """Seed 000's model step, then classify its answer and extract from a joke."""
    return {
        "name": "joke-triage",
        "inputs": {"type": "object", "properties": {"topic": {"type": "string"}}},
        "nodes": [
            {
                "id": "model",
                "type": "model",
                "config": {
                    "provider": "local",
                    "prompt": "Tell me a joke about the {{ inputs.topic }} "
                    "({{ secrets.TOPIC_SECRET }})",
                    "max_tokens": 8192,
                    "temperature": 0.7,
                    "top_p": 1,
                    "extra": {"top_k": 50, "repetition_penalty": 0},
                },
            },
            {
                "id": "route",
                "type": "classifier",
                "config": {
                    "provider": "local",
                    "input": "{{ nodes.model.output.content }}",
                    "instructions": "Puns about {{ secrets.TOPIC_SECRET }} are jokes.",
                    "categories": [
                        {"name": "joke", "description": "a joke or a pun"},
                        {"name": "other", "description": "anything else"},
                    ],
                },
            },
            {
                "id": "pull",
                "type": "extract",
                "config": {
                    "provider": "local",
                    "input": "{{ nodes.model.output.content }}",
                    "instructions": "Ignore {{ secrets.TOPIC_SECRET }}.",
                    "schema": {
                        "type": "object",
                        "properties": {"punchline": {"type": "string"}},
                        "required": ["punchline"],
                    },
                },
            },
            {"id": "skip", "type": "reshape", "config": {"output": "not a joke"}},
        ],
        "edges": [
            {"from": "model", "to": "route"},
            {"from": "route", "handle": "joke", "to": "pull"},
            {"from": "route", "handle": "other", "to": "skip"},
        ],
    }


def expected_cost(usage: dict[str, int]) -> float:
    return (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.6) / 1_000_000


async def test_a_triage_run_records_each_model_step(
    store: Store, store_url: str, pool: ClientPool, server: StandIn, configured: None
) -> None:
    server.script(
        Answer(
            content=f"{SEED_000} ({TOPIC_SECRET})",
            usage={"prompt_tokens": 36, "completion_tokens": 48, "total_tokens": 84},
        ),
        Answer(json_content={"category": "joke", "reason": "It is a pun."}),
        Answer(json_content={"punchline": "forecast-ticular"}),
    )
    finished, steps = await run(store, pool, triage(), {"topic": "weather"})
    assert finished.status is RunStatus.completed, finished.error

    # On the wire: the real key and the real secret.
    first = server.completions[0]
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert (
        first.body["messages"][0]["content"] == f"Tell me a joke about the weather ({TOPIC_SECRET})"
    )

    model = steps["model"]
    assert model.status is StepStatus.completed
    assert model.inputs == {
        "model": MODEL,
        "stream": False,
        "messages": [{"role": "user", "content": "Tell me a joke about the weather (***)"}],
        "temperature": 0.7,
        "top_p": 1,
        "max_tokens": 8192,
        "top_k": 50,
        "repetition_penalty": 0,
        # As Arcee's model steps show them: the run, and what it had when the step began.
        "run_id": str(finished.id),
        "input_data": {"topic": "weather"},
    }
    assert model.outputs["content"] == f"{SEED_000} (***)"
    assert model.outputs["choices"][0]["message"]["content"] == f"{SEED_000} (***)"
    assert model.outputs["usage"] == {
        "prompt_tokens": 36,
        "completion_tokens": 48,
        "total_tokens": 84,
    }
    assert model.outputs["confidence_info"]["confidence_score"] is None
    assert model.model == MODEL
    assert model.tokens is not None and model.tokens.model_dump() == {
        "prompt": 36,
        "completion": 48,
        "total": 84,
    }
    assert model.cost is not None
    assert model.cost.model_dump() == {
        "total": 0.0000342,
        "prompt": 0.0000054,
        "completion": 0.0000288,
        "input": 0.0000054,
        "output": 0.0000288,
        "currency": "USD",
    }
    assert metadata(model) == {
        "provider": "local",
        "base_url": server.base_url,
        "finish_reason": "stop",
    }
    assert [a.status for a in model.attempts] == [StepStatus.completed]

    route = steps["route"]
    assert route.outputs == {"category": "joke", "reason": "It is a pun."}
    assert route.handle_outputs == {"joke": {"type": "json", "data": route.outputs}}
    assert route.step_metadata is not None and route.step_metadata["active_handle"] == "joke"
    assert route.inputs["messages"][1]["content"] == f"{SEED_000} (***)"
    assert "Puns about *** are jokes." in route.inputs["messages"][0]["content"]
    assert server.completions[1].body["messages"][0]["content"].count(TOPIC_SECRET) == 1
    assert steps["skip"].status is StepStatus.skipped

    pull = steps["pull"]
    assert pull.outputs == {"punchline": "forecast-ticular"}
    assert pull.handle_outputs == {
        "output-json-0": {"type": "json", "data": {"punchline": "forecast-ticular"}}
    }
    assert pull.trace_spans is not None and [s["name"] for s in pull.trace_spans] == ["extract"]
    assert pull.inputs["messages"][0] == {"role": "system", "content": "Ignore ***."}
    assert pull.trace_spans[0]["request"]["messages"][0]["content"] == "Ignore ***."

    model_steps = [model, route, pull]
    for step in model_steps:
        assert step.tokens is not None and step.cost is not None
    usage = [model.outputs["usage"]] + [
        s.trace_spans[0]["response"]["usage"] for s in (route, pull) if s.trace_spans
    ]
    for step, counted in zip(model_steps, usage, strict=True):
        assert step.cost is not None and step.cost.total == pytest.approx(expected_cost(counted))
    assert finished.total_tokens == sum(s.tokens.total for s in model_steps if s.tokens)
    assert finished.total_cost == pytest.approx(sum(s.cost.total for s in model_steps if s.cost))

    # Off the record: neither the key nor the secret, in any step, nor in the database file.
    for step in steps.values():
        text = step.model_dump_json()
        assert KEY not in text and TOPIC_SECRET not in text
    url = make_url(store_url)
    if url.drivername.startswith("sqlite"):
        database = Path(str(url.database))
        stored = b"".join(
            path.read_bytes()
            for path in (database, database.with_name(database.name + "-wal"))
            if path.exists()
        )
        assert b"forecast-ticular" in stored  # the check reads what was written
        for value in (KEY, TOPIC_SECRET, json.dumps(TOPIC_SECRET)[1:-1]):
            assert value.encode() not in stored


async def test_a_run_whose_provider_key_is_not_set_is_refused_naming_node_and_field(
    store: Store, configured: None
) -> None:
    org = await store.organizations.ensure()
    definition = {
        "name": "no-key",
        "nodes": [{"id": "ask", "type": "model", "config": {"provider": "local", "prompt": "hi"}}],
    }
    with pytest.raises(MissingSecrets) as caught:
        await submit_run(store, org, definition, {}, default_registry(), secrets=secrets())
    assert caught.value.references == [
        SecretReference(KEY_SECRET, "ask", "$.nodes[0].config.provider")
    ]
    assert f"node 'ask' at $.nodes[0].config.provider reads secret {KEY_SECRET!r}" in str(
        caught.value
    )


async def test_a_rate_limited_call_is_retried_after_the_wait_the_provider_asks(
    store: Store, pool: ClientPool, server: StandIn, configured: None
) -> None:
    definition = {
        "name": "retry",
        "nodes": [
            {
                "id": "ask",
                "type": "model",
                "retry": {"max_attempts": 3, "initial_delay_s": 0, "jitter": False},
                "config": {"provider": "local", "prompt": "hi"},
            }
        ],
    }
    server.script(rate_limited("1"), Answer(content="hello"))
    finished, steps = await run(store, pool, definition)
    assert finished.status is RunStatus.completed, finished.error
    step = steps["ask"]
    first, second = step.attempts
    assert (first.status, first.error_category) == (StepStatus.error, "quota")
    assert (
        first.error is not None and "HTTP 429: Rate limit reached (retry after 1 s)" in first.error
    )
    assert second.status is StepStatus.completed
    assert first.completed_at is not None
    assert (second.started_at - first.completed_at).total_seconds() >= 0.9
    assert step.retry_count == 1
    assert step.outputs["content"] == "hello"


async def test_a_permanent_failure_is_not_retried(
    store: Store, pool: ClientPool, server: StandIn, configured: None
) -> None:
    definition = {
        "name": "no-retry",
        "nodes": [
            {
                "id": "ask",
                "type": "model",
                "retry": {"max_attempts": 3, "initial_delay_s": 0},
                "config": {"provider": "local", "prompt": "hi", "model": "no-such-model"},
            }
        ],
    }
    server.script(Answer(status=404, error={"message": "The model `no-such-model` does not exist"}))
    finished, steps = await run(store, pool, definition)
    assert finished.status is RunStatus.failed
    step = steps["ask"]
    assert len(step.attempts) == 1
    assert step.error_category == "permanent"
    assert step.error_stage == "execution"
    assert (
        step.error is not None
        and "HTTP 404: The model `no-such-model` does not exist" in step.error
    )
    assert step.error_details is not None and step.error_details.error_code == "http_404"
    assert step.inputs["model"] == "no-such-model"


async def test_a_failed_extraction_still_records_and_counts_what_it_spent(
    store: Store, pool: ClientPool, server: StandIn, configured: None
) -> None:
    definition = triage()
    definition["nodes"] = [definition["nodes"][2]]
    definition["nodes"][0]["config"]["input"] = "no joke here"
    definition["edges"] = []
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    server.script(
        Answer(json_content={}, usage=usage), Answer(json_content={"punchline": 1}, usage=usage)
    )
    finished, steps = await run(store, pool, definition)
    assert finished.status is RunStatus.failed
    pull = steps["pull"]
    assert pull.status is StepStatus.error
    assert pull.error_category == "permanent"
    assert pull.error == (
        "the extraction does not match the schema, even after a repair round-trip:\n"
        "- $.punchline: 1 is not of type 'string'"
    )
    assert pull.tokens is not None and pull.tokens.model_dump() == {
        "prompt": 200,
        "completion": 20,
        "total": 220,
    }
    assert pull.cost is not None and pull.cost.total == pytest.approx(2 * expected_cost(usage))
    assert pull.model == MODEL
    assert pull.trace_spans is not None and [s["violations"] for s in pull.trace_spans] == [
        ["$: 'punchline' is a required property"],
        ["$.punchline: 1 is not of type 'string'"],
    ]
    assert pull.step_metadata is not None and pull.step_metadata["repair_round_trips"] == 1
    assert finished.total_tokens == 220
    assert finished.total_cost == pytest.approx(2 * expected_cost(usage))
