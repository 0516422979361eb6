"""Cancelling a run while a worker executes it: stopped within a second, steps cancelled,
the sandbox process killed; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, RunStatus, StepStatus, utcnow
from stepline.settings import Settings
from stepline.store import Store
from stepline.store.tables import runs
from stepline.worker import Worker
from support.engine import queue_run
from support.sandbox import host_pids, new_marker, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox forks")

SLOW = """
import subprocess, time

def main(inputs):
    subprocess.Popen(["sleep", inputs["marker"]])  # found on the host by this marker
    time.sleep(60)
    return "never"
"""


def definition() -> dict[str, Any]:
    """first -> slow (sleeps 60 s) -> after; `first` finishes before the cancel."""

    def code(body: str, **inputs: Any) -> dict[str, Any]:
        return {"inputs": inputs, "code": body}

    return {
        "name": "cancel-me",
        "inputs": {"type": "object", "properties": {"marker": {"type": "string"}}},
        "nodes": [
            {"id": "first", "type": "code", "config": code("def main(inputs):\n    return 1\n")},
            {
                "id": "slow",
                "type": "code",
                "timeout_s": 120,
                "config": code(SLOW, marker="{{ inputs.marker }}"),
            },
            {"id": "after", "type": "code", "config": code("def main(inputs):\n    return 2\n")},
        ],
        "edges": [{"from": "first", "to": "slow"}, {"from": "slow", "to": "after"}],
    }


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[Engine]:
    async with open_node_services(Settings()) as services:
        yield Engine(store, default_registry(), services=services)


async def _start(worker: Worker, run: RunRecord, marker: str) -> asyncio.Task[Any]:
    """Start executing the run; return its task once `slow` runs."""
    task = asyncio.create_task(worker.claim_and_execute(run.id))
    started = await wait_until(lambda: task.done() or bool(host_pids(marker)), 20)
    assert started and not task.done(), "the slow step never started"
    return task


async def _check_cancelled(store: Store, run: RunRecord, marker: str) -> None:
    stored = await store.runs.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.cancelled
    assert stored.completed_at is not None and stored.lease_owner is None
    assert stored.cancel_requested_at is not None
    steps = {s.step_id: s for s in await store.steps.list(run.id)}
    assert steps["first"].status is StepStatus.completed
    slow = steps["slow"]
    assert slow.status is StepStatus.cancelled
    assert slow.status_reason == "run cancelled"
    assert slow.completed_at is not None and slow.duration_ms is not None
    assert [a.status for a in slow.attempts] == [StepStatus.cancelled]
    assert steps["after"].status is StepStatus.cancelled
    assert steps["after"].started_at is None and steps["after"].completed_at is None
    assert await wait_until(lambda: not host_pids(marker), 3), "the code outlived the cancel"
    events = await store.events.list(run.id, organization_id=run.organization_id)
    assert events[-1].type == "run.cancelled"
    assert {(e.data.get("step_id"), e.type) for e in events[:-1]} >= {
        ("slow", "step.cancelled"),
        ("after", "step.cancelled"),
    }


async def test_a_cancel_request_stops_the_running_run_within_a_second(
    store: Store, engine: Engine
) -> None:
    marker = new_marker()
    run = await queue_run(store, definition(), {"marker": marker})
    worker = Worker(engine, lease_s=30)
    task = await _start(worker, run, marker)

    requested = time.monotonic()
    pending = await store.runs.request_cancel(run.organization_id, run.id)
    assert pending.status is RunStatus.running  # held by the worker: it stops the run
    finished = await asyncio.wait_for(task, 5)
    elapsed = time.monotonic() - requested

    assert finished.status is RunStatus.cancelled
    assert elapsed < 1.5, f"the worker took {elapsed:.2f} s to stop the run"
    await _check_cancelled(store, run, marker)


async def test_telling_the_worker_stops_the_run_without_waiting_for_a_poll(
    store: Store, engine: Engine
) -> None:
    marker = new_marker()
    run = await queue_run(store, definition(), {"marker": marker})
    worker = Worker(engine, lease_s=30, cancel_poll_s=60)  # the poll would come too late
    task = await _start(worker, run, marker)

    requested = time.monotonic()
    await store.runs.request_cancel(run.organization_id, run.id)
    assert worker.cancel(run.id)
    finished = await asyncio.wait_for(task, 5)
    elapsed = time.monotonic() - requested

    assert finished.status is RunStatus.cancelled
    assert elapsed < 1.0, f"the worker took {elapsed:.2f} s to stop the run"
    await _check_cancelled(store, run, marker)
    assert not worker.cancel(run.id)  # no longer running here


async def test_a_run_claimed_after_its_cancel_request_runs_nothing(
    store: Store, engine: Engine
) -> None:
    marker = new_marker()
    run = await queue_run(store, definition(), {"marker": marker})
    # A worker took it, the cancel was requested, and the worker died before it noticed.
    assert await store.runs.claim("dead-worker", 30, run_id=run.id) is not None
    await store.runs.request_cancel(run.organization_id, run.id)

    def expire(conn: sa.Connection) -> None:
        past = utcnow() - timedelta(seconds=1)
        conn.execute(runs.update().where(runs.c.id == run.id).values(lease_expires_at=past))

    await store.writer.submit(expire)

    finished = await Worker(engine, lease_s=30).claim_and_execute(run.id)
    assert finished is not None and finished.status is RunStatus.cancelled
    steps = {s.step_id: s for s in await store.steps.list(run.id)}
    assert {s.status for s in steps.values()} == {StepStatus.cancelled}
    assert all(s.started_at is None for s in steps.values())
    assert not host_pids(marker)
