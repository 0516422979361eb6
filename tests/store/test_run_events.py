"""Run events: one per run and step transition, written with the transition, read in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from store_helpers import Workflow, new_step

from stepline.records import RunStatus, StepStatus, utcnow
from stepline.store import LeaseLostError, StepNotFoundError, Store


async def test_a_run_life_is_told_by_its_events_in_order(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    claimed = await store.runs.claim("worker-a", 30)
    assert claimed is not None
    step = new_step(run, 0, "fetch", loop_id="loop", iteration=2)
    await store.steps.insert([step])
    step.status = StepStatus.running
    step.started_at = step.updated_at = utcnow()
    await store.steps.update(step)
    step.status = StepStatus.completed
    step.completed_at = step.updated_at = step.started_at + timedelta(milliseconds=5)
    await store.steps.update(step)
    await store.runs.finish(run.id, "worker-a", status=RunStatus.completed, output={"ok": 1})

    events = await store.events.list(run.id, organization_id=workflow.organization_id)
    assert [e.type for e in events] == [
        "run.queued",
        "run.running",
        "step.running",
        "step.completed",
        "run.completed",
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {e.run_id for e in events} == {run.id}
    assert events[0].data == {"status": "queued", "run_number": 1}
    assert events[1].data == {"status": "running", "attempt": 1}
    assert events[0].step_id is None and events[4].step_id is None
    completed = events[3]
    assert completed.step_id == step.id
    assert completed.created_at == step.updated_at
    assert completed.data == {
        "step_id": "fetch",
        "node_id": "fetch",
        "status": "completed",
        "status_reason": None,
        "iteration": 2,
        "loop_id": "loop",
        "order_key": step.order_key,
        "started_at": step.started_at.isoformat().replace("+00:00", "Z"),
        "completed_at": step.completed_at.isoformat().replace("+00:00", "Z"),
        "error": None,
    }
    finished = events[4]
    assert finished.data["status"] == "completed"
    assert isinstance(finished.data["duration_ms"], int)


async def test_events_resume_after_an_id_and_respect_the_limit(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(5)]
    await store.steps.insert(steps)
    for step in steps:
        step.status = StepStatus.skipped
        await store.steps.update(step)
    org = workflow.organization_id
    every = await store.events.list(run.id, organization_id=org)
    assert len(every) == 6
    assert [e.data["step_id"] for e in every[1:]] == [f"node{i}" for i in range(5)]
    after = await store.events.list(run.id, organization_id=org, after_id=every[2].id)
    assert after == every[3:]
    first_two = await store.events.list(run.id, organization_id=org, limit=2)
    assert first_two == every[:2]
    assert await store.events.list(run.id, organization_id=org, after_id=every[-1].id) == []
    with pytest.raises(ValueError, match="limit"):
        await store.events.list(run.id, organization_id=org, limit=0)


async def test_events_of_another_organization_or_run_are_not_listed(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    other_run = await store.runs.create(workflow.run())
    other_org = await store.organizations.ensure("other")
    assert await store.events.list(run.id, organization_id=other_org) == []
    mine = await store.events.list(run.id, organization_id=workflow.organization_id)
    assert [e.run_id for e in mine] == [run.id]
    theirs = await store.events.list(other_run.id, organization_id=workflow.organization_id)
    assert [e.run_id for e in theirs] == [other_run.id]


async def test_a_refused_transition_writes_no_event(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    with pytest.raises(LeaseLostError):
        await store.runs.finish(run.id, "worker-b", status=RunStatus.completed)
    with pytest.raises(StepNotFoundError):
        await store.steps.update(new_step(run, 0, status=StepStatus.running))
    assert await store.runs.claim("worker-b", 30) is None  # nothing claimable: no event
    events = await store.events.list(run.id, organization_id=workflow.organization_id)
    assert [e.type for e in events] == ["run.queued", "run.running"]


async def test_released_and_reclaimed_runs_record_each_claim(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    await store.runs.finish(run.id, "worker-a", status=RunStatus.queued)
    assert await store.runs.claim("worker-b", 30) is not None
    events = await store.events.list(run.id, organization_id=workflow.organization_id)
    assert [(e.type, e.data.get("attempt")) for e in events] == [
        ("run.queued", None),
        ("run.running", 1),
        ("run.queued", None),
        ("run.running", 2),
    ]


async def test_concurrent_step_updates_each_get_one_event(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(50)]
    await store.steps.insert(steps)

    async def advance(i: int) -> None:
        step = steps[i]
        for status in (StepStatus.running, StepStatus.completed):
            step.status = status
            step.updated_at = utcnow()
            await store.steps.update(step)

    await asyncio.gather(*(advance(i) for i in range(50)))
    events = await store.events.list(run.id, organization_id=workflow.organization_id)
    step_events = [e for e in events if e.type.startswith("step.")]
    assert len(step_events) == 100
    for step in steps:
        mine = [e.type for e in step_events if e.step_id == step.id]
        assert mine == ["step.running", "step.completed"]
