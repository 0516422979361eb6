"""Retry paths and timeouts as the step record shows them, against a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stepline.records import ErrorCategory, ErrorStage, RunStatus, StepStatus
from stepline.store import Store
from support.engine import run_workflow
from support.http_server import loopback_server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'retries.db'}")
    await store.upgrade()
    yield store
    await store.close()


def call(url: str, **node: Any) -> dict[str, Any]:
    return {"id": "call", "type": "api_call", "config": {"url": url}, **node}


async def test_quota_error_waits_for_retry_after_then_succeeds(store: Store) -> None:
    def quota(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
        if n == 1:
            return 429, {"Retry-After": "1"}, {"error": "slow down"}
        return 200, {}, {"ok": True}

    with loopback_server({"/q": quota}) as server:
        retry = {"max_attempts": 3, "initial_delay_s": 0, "jitter": False}
        definition = {"name": "quota", "nodes": [call(f"{server.url}/q", retry=retry)]}
        out = await run_workflow(store, definition)
    step = out.steps["call"]
    assert out.run.status is RunStatus.completed
    assert step.retry_count == 1
    first, second = step.attempts
    assert first.error_category is ErrorCategory.quota
    assert first.completed_at is not None
    # The policy alone would retry at once; the server asked for a second.
    assert (second.started_at - first.completed_at).total_seconds() >= 0.95


async def test_workflow_defaults_give_every_node_its_retry_policy(store: Store) -> None:
    def flaky(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
        return (503, {}, {"down": True}) if n < 3 else (200, {}, {"n": n})

    with loopback_server({"/f": flaky}) as server:
        definition = {
            "name": "defaults",
            "defaults": {"retry": {"max_attempts": 4, "initial_delay_s": 0, "jitter": False}},
            "nodes": [call(f"{server.url}/f")],
        }
        out = await run_workflow(store, definition)
    step = out.steps["call"]
    assert out.run.status is RunStatus.completed
    assert step.retry_count == 2
    assert [a.status for a in step.attempts] == [
        StepStatus.error,
        StepStatus.error,
        StepStatus.completed,
    ]
    assert all(a.error_category is ErrorCategory.transient for a in step.attempts[:2])
    assert "503" in (step.attempts[0].error or "")


async def test_an_http_call_past_its_timeout_is_aborted_as_a_transient_error(
    store: Store,
) -> None:
    with loopback_server({}) as server:

        def slow(_n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
            server.release.wait(10)
            return 200, {}, {"late": True}

        server.routes["/slow"] = slow
        definition = {"name": "slow", "nodes": [call(f"{server.url}/slow", timeout_s=0.5)]}
        out = await run_workflow(store, definition)
    step = out.steps["call"]
    assert out.run.status is RunStatus.failed
    assert step.status is StepStatus.error
    assert step.error_category is ErrorCategory.transient
    assert step.error_stage is ErrorStage.execution
    assert "timed out" in (step.error or "")
    assert step.duration_ms is not None and step.duration_ms < 5000
