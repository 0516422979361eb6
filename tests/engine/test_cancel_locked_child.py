"""Cancelling a parent run while another transaction holds its child run's row locked.

The parent waits for its child (a sub_workflow), which waits for a review: neither is
executed by a worker, so the cancel itself must reach both. On PostgreSQL the child's row
is held with `SELECT ... FOR UPDATE` by a connection of the test's own (as a claim, a lease
renewal or a review of the child would hold it); on SQLite the holder takes the file's
write lock, the only lock SQLite has. Either way the child ends cancelled once the lock is
released.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import pytest

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, RunStatus, StepStatus
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker, WorkerPool
from support.engine import execute, queue_run, save_definition
from support.locks import run_row_locked

HELD_S = 0.5
"""How long the test's transaction holds the child's row after the cancel started."""


async def waiting_parent_and_child(store: Store) -> tuple[UUID, RunRecord, RunRecord]:
    """A parent run waiting for its child run, which waits for a review."""
    org = await store.organizations.ensure()
    child = {
        "name": "reviewed-child",
        "nodes": [{"id": "ok", "type": "hil", "config": {"payload": 1, "instructions": "check"}}],
    }
    await save_definition(store, org, child, default_registry())
    parent = {
        "name": "parent",
        "nodes": [{"id": "call", "type": "sub_workflow", "config": {"workflow": "reviewed-child"}}],
    }
    out = await execute(store, await queue_run(store, parent, {}))
    assert out.run.status is RunStatus.waiting_for_human
    child_run = await store.runs.find_child(out.steps["call"].id)
    assert child_run is not None and child_run.status is RunStatus.waiting_for_human
    return org, out.run, child_run


async def status_of(store: Store, run_id: UUID) -> RunStatus:
    run = await store.runs.get(run_id)
    assert run is not None
    return run.status


async def check_cancelled(store: Store, org: UUID, child: RunRecord) -> None:
    assert await status_of(store, child.id) is RunStatus.cancelled
    assert all(s.status is StepStatus.cancelled for s in await store.steps.list(child.id))
    assert (await store.runs.page_reviews(org)).items == []
    events = await store.events.list(child.id, organization_id=org)
    assert events[-1].type == "run.cancelled"


async def test_a_child_locked_while_its_parent_is_cancelled_ends_cancelled(
    store: Store, store_url: str
) -> None:
    org, parent, child = await waiting_parent_and_child(store)
    async with run_row_locked(store_url, child.id):
        cancel = asyncio.create_task(store.runs.request_cancel(org, parent.id))
        if store.dialect == "postgresql":
            # The parent's cancel commits without waiting for its child's lock...
            async with asyncio.timeout(5):
                while await status_of(store, parent.id) is not RunStatus.cancelled:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(HELD_S)
            # ...and the child, held all along, is still to do.
            assert await status_of(store, child.id) is RunStatus.waiting_for_human
            assert not cancel.done()
        else:
            await asyncio.sleep(HELD_S)
    cancelled = await asyncio.wait_for(cancel, 10)
    assert cancelled.status is RunStatus.cancelled
    await check_cancelled(store, org, child)


# PostgreSQL only: on SQLite a cancel waits for the write lock instead, never skipping a row.
@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_child_locked_past_the_retries_is_cancelled_by_the_next_cancel(
    store: Store, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    org, parent, child = await waiting_parent_and_child(store)
    async with run_row_locked(store_url, child.id):
        with caplog.at_level(logging.WARNING, logger="stepline.store.runs.cancel"):
            first = await store.runs.request_cancel(org, parent.id, retry_locked_for_s=0.2)
        assert first.status is RunStatus.cancelled
        assert await status_of(store, child.id) is RunStatus.waiting_for_human
        assert str(child.id) in caplog.text and "sweep cancels them" in caplog.text
    # A cancel of the cancelled parent looks at its unfinished children again.
    again = await store.runs.request_cancel(org, parent.id)
    assert again.status is RunStatus.cancelled
    assert again.cancel_requested_at == first.cancel_requested_at
    await check_cancelled(store, org, child)


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_child_locked_past_the_retries_is_cancelled_by_the_sweep(
    store: Store, store_url: str
) -> None:
    org, parent, child = await waiting_parent_and_child(store)
    async with run_row_locked(store_url, child.id):
        first = await store.runs.request_cancel(org, parent.id, retry_locked_for_s=0.2)
        assert first.status is RunStatus.cancelled
        # While the lock is held the sweep skips the child rather than wait for it.
        assert await store.runs.cancel_children_of_cancelled() == 0
    assert await status_of(store, child.id) is RunStatus.waiting_for_human
    # Nobody cancels again: the sweep every worker pool runs reaches the child.
    assert await store.runs.cancel_children_of_cancelled() == 1
    await check_cancelled(store, org, child)
    assert await store.runs.cancel_children_of_cancelled() == 0


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_serving_worker_pool_sweeps_children_of_cancelled_runs(
    store: Store, store_url: str
) -> None:
    org, parent, child = await waiting_parent_and_child(store)
    async with run_row_locked(store_url, child.id):
        await store.runs.request_cancel(org, parent.id, retry_locked_for_s=0.1)
    async with open_node_services(Settings()) as services:
        engine = Engine(store, default_registry(), services=services)
        pool = WorkerPool(Worker(engine, lease_s=30), concurrency=1, sweep_s=0.05)
        stop = asyncio.Event()
        serving = asyncio.create_task(pool.serve(stop))
        try:
            async with asyncio.timeout(10):
                while await status_of(store, child.id) is not RunStatus.cancelled:
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await serving
    await check_cancelled(store, org, child)
