"""Waiting for a run wakes on its events (the store's run bell), not by polling the run."""

from __future__ import annotations

import asyncio

import pytest
from service_defs import two_inputs

from stepline import service
from stepline.records import RunStatus
from stepline.service import Caller, ServiceContext, waiting
from stepline.store import Store
from support.engine import execute

INPUTS = {"name": "Ada", "greeting": "Hello"}


async def test_the_bell_rings_when_a_run_event_commits(ctx: ServiceContext, store: Store) -> None:
    caller = Caller(await store.organizations.ensure())
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run

    with store.run_bell.listen(run.id) as rung:
        assert not rung.is_set()
        await store.runs.request_cancel(caller.organization_id, run.id)
        await asyncio.sleep(0)  # the writer's announcement is scheduled on the loop
        assert rung.is_set()


async def test_wait_returns_when_the_run_finishes_woken_by_its_events(
    ctx: ServiceContext, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the bell, the waiter would read the events only every minute: it must not.
    monkeypatch.setattr(waiting, "UNHEARD_S", 60.0)
    reads = {"events": 0, "runs": 0}
    list_events, get_run = store.events.list, store.runs.get

    async def counted_events(*args: object, **kwargs: object) -> object:
        reads["events"] += 1
        return await list_events(*args, **kwargs)  # type: ignore[arg-type]

    async def counted_runs(*args: object, **kwargs: object) -> object:
        reads["runs"] += 1
        return await get_run(*args, **kwargs)  # type: ignore[arg-type]

    caller = Caller(await store.organizations.ensure())
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run
    monkeypatch.setattr(store.events, "list", counted_events)
    monkeypatch.setattr(store.runs, "get", counted_runs)

    waiter = asyncio.create_task(service.wait_for_run(ctx, caller, run.id, 30.0))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    idle_reads = reads["events"]
    await asyncio.sleep(0.3)
    assert reads["events"] == idle_reads, "the waiter read the events while nothing happened"

    started = asyncio.get_running_loop().time()
    await execute(store, run)
    finished = await asyncio.wait_for(waiter, 5.0)

    assert finished.status is RunStatus.completed
    assert asyncio.get_running_loop().time() - started < 5.0
    assert reads["runs"] <= 2 + 2  # the waiter's first and last look (+ execute's own)


async def test_wait_gives_the_run_as_it_is_after_the_timeout(
    ctx: ServiceContext, store: Store
) -> None:
    caller = Caller(await store.organizations.ensure())
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run

    waited = await service.wait_for_run(ctx, caller, run.id, 0.2)

    assert waited.status is RunStatus.queued
