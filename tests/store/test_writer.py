"""The single writer: group commit, isolation of a failing write, orderly close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from store_helpers import Workflow, new_step

from stepline.records import StepStatus, new_id, utcnow
from stepline.store import StepNotFoundError, Store, StoreClosedError
from stepline.store.tables import organizations


async def test_concurrent_updates_share_transactions(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(200)]
    await store.steps.insert(steps)
    before = store.writer.transactions
    done = [
        s.model_copy(update={"status": StepStatus.completed, "outputs": i})
        for i, s in enumerate(steps)
    ]
    await asyncio.gather(*(store.steps.update(s) for s in done))
    used = store.writer.transactions - before
    assert used < 200, f"{used} transactions for 200 concurrent updates: no batching"
    listed = await store.steps.list(run.id)
    assert [(s.status, s.outputs) for s in listed] == [
        (StepStatus.completed, i) for i in range(200)
    ]


async def test_a_failing_write_does_not_fail_its_batch_neighbours(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(10)]
    await store.steps.insert(steps)
    never_inserted = new_step(run, 99)
    updates = [s.model_copy(update={"status": StepStatus.running}) for s in steps]
    updates.insert(5, never_inserted)
    results = await asyncio.gather(
        *(store.steps.update(s) for s in updates), return_exceptions=True
    )
    assert isinstance(results[5], StepNotFoundError)
    assert [r for i, r in enumerate(results) if i != 5] == [None] * 10
    assert await store.steps.counts(run.id) == {"running": 10}


async def test_a_failed_batch_is_rolled_back_before_its_writes_are_retried(
    store: Store,
) -> None:
    # Had the batch's insert survived its failure, its retry would break the unique name.
    def insert(name: str) -> Callable[[sa.Connection], str]:
        def op(conn: sa.Connection) -> str:
            conn.execute(
                organizations.insert(), {"id": new_id(), "name": name, "created_at": utcnow()}
            )
            return name

        return op

    def boom(conn: sa.Connection) -> None:
        raise RuntimeError("this write is broken")

    results = await asyncio.gather(
        store.writer.submit(insert("first")),
        store.writer.submit(boom),
        store.writer.submit(insert("last")),
        return_exceptions=True,
    )
    assert results[0] == "first" and results[2] == "last"
    assert isinstance(results[1], RuntimeError)

    def names(conn: sa.Connection) -> list[str]:
        return list(conn.execute(sa.select(organizations.c.name).order_by("name")).scalars())

    assert await store.database.read(names) == ["first", "last"]


async def test_a_failing_write_alone_leaves_nothing_behind(store: Store) -> None:
    def half_done(conn: sa.Connection) -> None:
        conn.execute(
            organizations.insert(), {"id": new_id(), "name": "half", "created_at": utcnow()}
        )
        raise RuntimeError("this write is broken")

    await store.organizations.ensure("before")
    with pytest.raises(RuntimeError, match="broken"):
        await store.writer.submit(half_done)
    await store.organizations.ensure("after")

    def names(conn: sa.Connection) -> list[str]:
        return list(conn.execute(sa.select(organizations.c.name).order_by("name")).scalars())

    assert await store.database.read(names) == ["after", "before"]


async def test_a_cancelled_caller_does_not_stop_the_writes_after_it(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(3)]
    await store.steps.insert(steps)
    gone = asyncio.ensure_future(
        store.steps.update(steps[0].model_copy(update={"status": StepStatus.running}))
    )
    gone.cancel()
    await store.steps.update(steps[1].model_copy(update={"status": StepStatus.completed}))
    assert gone.cancelled()
    counts = await store.steps.counts(run.id)
    assert counts.get("completed") == 1
    assert counts.get("pending", 0) + counts.get("running", 0) == 2


async def test_writes_queued_without_waiting_commit_in_order_and_together(store: Store) -> None:
    await store.organizations.ensure("first")

    def insert(name: str) -> Callable[[sa.Connection], None]:
        def op(conn: sa.Connection) -> None:
            conn.execute(
                organizations.insert(), {"id": new_id(), "name": name, "created_at": utcnow()}
            )

        return op

    def names_seen(conn: sa.Connection) -> list[str]:
        return list(conn.execute(sa.select(organizations.c.name).order_by("name")).scalars())

    before = store.writer.transactions
    queued = store.writer.enqueue(insert("second"))
    seen = store.writer.enqueue(names_seen)  # queued after: sees the insert
    assert await seen == ["first", "second"]
    assert await queued is None
    assert store.writer.transactions - before == 1


async def test_close_commits_writes_already_submitted(store_url: str, workflow: Workflow) -> None:
    store = await Store.connect(store_url)
    run = await store.runs.create(workflow.run())
    steps = [new_step(run, i) for i in range(20)]
    pending = [asyncio.ensure_future(store.steps.insert([s])) for s in steps]
    await asyncio.sleep(0)  # let every insert reach the writer's queue
    await store.close()
    assert all(task.done() and task.exception() is None for task in pending)
    reopened = await Store.connect(store_url)
    try:
        assert len(await reopened.steps.list(run.id)) == 20
    finally:
        await reopened.close()


async def test_write_after_close_is_refused(store_url: str) -> None:
    store = await Store.connect(store_url)
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.organizations.ensure()


async def test_a_lone_step_write_commits_and_a_failing_one_leaves_nothing_behind(
    store: Store, workflow: Workflow
) -> None:
    # On SQLite a batch of step writes begins and commits on the driver's connection
    # (`driver_only`); a failure must roll it back and leave the connection usable for
    # writes through SQLAlchemy.
    run = await store.runs.create(workflow.run())
    step = new_step(run, 0)
    await store.steps.insert([step])
    before = store.writer.transactions
    await store.steps.update(step.model_copy(update={"status": StepStatus.running}))
    assert store.writer.transactions - before == 1
    with pytest.raises(StepNotFoundError):
        await store.steps.update(new_step(run, 1).model_copy(update={"status": StepStatus.running}))
    events = await store.events.list(run.id, organization_id=run.organization_id)
    assert [e.type for e in events if e.type.startswith("step.")] == ["step.running"]
    # The connection is not left inside a transaction: an SQLAlchemy write still commits.
    await store.writer.submit(
        lambda conn: conn.execute(
            organizations.insert(), {"id": new_id(), "name": "after", "created_at": utcnow()}
        )
    )
    await store.steps.update(step.model_copy(update={"status": StepStatus.completed}))
    assert await store.steps.counts(run.id) == {"completed": 1}
