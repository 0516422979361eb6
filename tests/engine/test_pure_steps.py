"""A pure step (reshape, merge_dicts...) commits its `running` with its outcome: one commit.

Its event log still tells both transitions, in order; a kind with effects (code) still
commits `running` before it runs, so a reader sees it running while it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunStatus, StepStatus
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker
from support.engine import queue_run, run_workflow


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'pure.db'}")
    await store.upgrade()
    yield store
    await store.close()


def chain(size: int) -> dict[str, Any]:
    nodes = [{"id": "s0", "type": "reshape", "config": {"output": {"i": 0}}}]
    nodes += [
        {
            "id": f"s{i}",
            "type": "reshape",
            "config": {"output": {"i": f"{{{{ nodes.s{i - 1}.output.i + 1 }}}}"}},
        }
        for i in range(1, size)
    ]
    edges = [{"from": f"s{i - 1}", "to": f"s{i}"} for i in range(1, size)]
    return {"name": "pure-chain", "nodes": nodes, "edges": edges}


async def step_events(store: Store, run_id: Any, organization_id: Any) -> dict[str, list[Any]]:
    by_step: dict[str, list[Any]] = {}
    for event in await store.events.list(run_id, organization_id=organization_id):
        if event.type.startswith("step."):
            by_step.setdefault(event.data["step_id"], []).append(event)
    return by_step


async def test_a_chain_of_pure_steps_commits_once_per_step(store: Store) -> None:
    size = 30
    run = await queue_run(store, chain(size), {})
    before = store.writer.transactions
    async with open_node_services(Settings()) as services:
        engine = Engine(store, default_registry(), services=services)
        finished = await Worker(engine, lease_s=30).claim_and_execute(run.id)
    used = store.writer.transactions - before
    assert finished is not None and finished.status is RunStatus.completed
    assert finished.output == {"i": size - 1}
    # One per step, plus the run's own: claim, the pending steps, finish.
    assert size <= used <= size + 5, f"{used} commits for {size} pure steps"

    events = await step_events(store, run.id, run.organization_id)
    steps = {s.step_id: s for s in await store.steps.list(run.id)}
    for i in range(size):
        step_id = f"s{i}"
        running, completed = events[step_id]
        assert (running.type, completed.type) == ("step.running", "step.completed")
        assert running.id < completed.id
        assert running.data["started_at"] is not None and running.data["completed_at"] is None
        assert completed.data["completed_at"] is not None
        assert running.created_at <= completed.created_at
        step = steps[step_id]
        assert step.status is StepStatus.completed and step.outputs == {"i": i}
        assert [a.status for a in step.attempts] == [StepStatus.completed]


async def test_a_failing_pure_step_records_running_then_error(store: Store) -> None:
    definition = {
        "name": "pure-fails",
        "nodes": [
            {"id": "a", "type": "reshape", "config": {"output": [1, 2]}},
            {"id": "m", "type": "merge_dicts", "config": {"inputs": ["{{ nodes.a.output }}"]}},
        ],
        "edges": [{"from": "a", "to": "m"}],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.failed
    merged = out.steps["m"]
    assert merged.status is StepStatus.error and "not an object" in (merged.error or "")
    assert merged.started_at is not None and merged.inputs == {"inputs": [[1, 2]]}
    assert out.transitions.statuses["m"] == [
        StepStatus.pending,
        StepStatus.running,
        StepStatus.error,
    ]
    events = await step_events(store, out.run.id, out.run.organization_id)
    assert [e.type for e in events["m"]] == ["step.running", "step.error"]


async def test_a_code_step_is_on_record_as_running_while_it_runs(store: Store) -> None:
    definition = {
        "name": "effects",
        "nodes": [
            {"id": "prep", "type": "reshape", "config": {"output": {"n": 1}}},
            {
                "id": "slow",
                "type": "code",
                "config": {
                    "inputs": {},
                    "code": "import time\ndef main(inputs):\n    time.sleep(1.0)\n    return {}\n",
                },
            },
        ],
        "edges": [{"from": "prep", "to": "slow"}],
    }
    run = await queue_run(store, definition, {})
    async with open_node_services(Settings()) as services:
        engine = Engine(store, default_registry(), services=services)
        executing = asyncio.create_task(Worker(engine, lease_s=30).claim_and_execute(run.id))
        seen: StepStatus | None = None
        for _ in range(400):
            step = await store.steps.find(run.organization_id, run.id, "slow")
            if step is not None and step.status is StepStatus.running:
                seen = step.status
                break
            await asyncio.sleep(0.01)
        finished = await executing
    assert seen is StepStatus.running, "the code step was never on record as running"
    assert finished is not None and finished.status is RunStatus.completed
