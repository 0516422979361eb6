"""The API's read side: run and step pages, the run summary, idempotency keys, cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from store_helpers import Workflow, new_step

from stepline.records import RunRecord, RunStatus, StepStatus, utcnow
from stepline.store import DuplicateError, RunNotFoundError, Store
from stepline.store.paging import InvalidCursor, Page
from stepline.store.tables import runs


async def _set_run(store: Store, run_id: UUID, **values: Any) -> None:
    """Give a run the columns a test needs (a known duration, an old creation time...)."""

    def op(conn: sa.Connection) -> None:
        conn.execute(runs.update().where(runs.c.id == run_id).values(**values))

    await store.writer.submit(op)


def _ids(page: Page[Any]) -> list[Any]:
    return [item.id for item in page.items]


# --- runs ----------------------------------------------------------------------------------


async def test_run_pages_go_newest_first_without_gaps_both_ways(
    store: Store, workflow: Workflow
) -> None:
    created = [await store.runs.create(workflow.run()) for _ in range(23)]
    newest_first = [r.id for r in reversed(created)]
    org, wf = workflow.organization_id, workflow.workflow_id

    seen: list[UUID] = []
    cursors: list[str | None] = []
    page = await store.runs.page(org, workflow_id=wf, limit=5)
    assert page.prev_cursor is None
    while True:
        seen += _ids(page)
        cursors.append(page.prev_cursor)
        if page.next_cursor is None:
            break
        page = await store.runs.page(org, workflow_id=wf, limit=5, after=page.next_cursor)
    assert seen == newest_first

    back: list[UUID] = _ids(page)
    while page.prev_cursor is not None:
        page = await store.runs.page(org, workflow_id=wf, limit=5, before=page.prev_cursor)
        back = _ids(page) + back
    assert back == newest_first


async def test_run_pages_filter_and_count_steps(store: Store, workflow: Workflow) -> None:
    org, wf = workflow.organization_id, workflow.workflow_id
    workspace = uuid4()
    old = await store.runs.create(workflow.run())
    await _set_run(store, old.id, created_at=utcnow() - timedelta(days=3))
    in_workspace = await store.runs.create(workflow.run(workspace_id=workspace))
    done = await store.runs.create(workflow.run())
    await _set_run(store, done.id, status=RunStatus.completed.value)
    await store.steps.insert(
        [new_step(done, 0), new_step(done, 1, status=StepStatus.completed), new_step(done, 2)]
    )

    everything = await store.runs.page(org, workflow_id=wf)
    assert _ids(everything) == [done.id, in_workspace.id, old.id]
    assert everything.items[0].step_counts == {"pending": 2, "completed": 1}
    assert everything.items[1].step_counts == {}

    completed = await store.runs.page(org, workflow_id=wf, status=RunStatus.completed)
    assert _ids(completed) == [done.id]
    recent = await store.runs.page(org, workflow_id=wf, created_from=utcnow() - timedelta(days=1))
    assert _ids(recent) == [done.id, in_workspace.id]
    older = await store.runs.page(org, workflow_id=wf, created_to=utcnow() - timedelta(days=1))
    assert _ids(older) == [old.id]
    scoped = await store.runs.page(org, workflow_id=wf, workspace_id=workspace)
    assert _ids(scoped) == [in_workspace.id]

    other_org = await store.organizations.ensure("other")
    assert (await store.runs.page(other_org, workflow_id=wf)).items == []
    other_wf = await store.workflows.save(org, {"name": "other"})
    assert (await store.runs.page(org, workflow_id=other_wf.workflow.id)).items == []


async def test_a_cursor_of_another_listing_is_refused(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    await store.steps.insert([new_step(run, 0), new_step(run, 1)])
    org = workflow.organization_id
    step_page = await store.steps.page(run.id, organization_id=org, limit=1)
    assert step_page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await store.runs.page(org, workflow_id=workflow.workflow_id, after=step_page.next_cursor)
    with pytest.raises(InvalidCursor):
        await store.steps.page(run.id, organization_id=org, before="not-a-cursor")


async def test_summary_counts_rates_percentiles_and_usage(store: Store, workflow: Workflow) -> None:
    org, wf = workflow.organization_id, workflow.workflow_id
    # 20 finished runs lasting 10, 20, ... 200 ms: 14 completed, 4 failed, 2 cancelled.
    statuses = [RunStatus.completed] * 14 + [RunStatus.failed] * 4 + [RunStatus.cancelled] * 2
    for i, status in enumerate(statuses):
        run = await store.runs.create(workflow.run())
        await _set_run(
            store,
            run.id,
            status=status.value,
            duration_ms=(i + 1) * 10,
            total_tokens=100,
            total_cost=0.25,
        )
    await store.runs.create(workflow.run())  # queued: counted, not timed
    outside = await store.runs.create(workflow.run())
    await _set_run(
        store,
        outside.id,
        created_at=utcnow() - timedelta(days=2),
        status="completed",
        duration_ms=999_999,
        total_tokens=5,
    )

    now = utcnow()
    summary = await store.runs.summary(org, wf, since=now - timedelta(days=1), until=now)
    assert summary.total == 21
    assert summary.counts == {
        "queued": 1,
        "running": 0,
        "waiting_for_human": 0,
        "completed": 14,
        "failed": 4,
        "cancelled": 2,
    }
    assert summary.success_rate == pytest.approx(14 / 20)
    assert summary.p50_duration_ms == 100  # nearest rank: the 10th of 20
    assert summary.p95_duration_ms == 190  # the 19th of 20
    assert summary.total_tokens == 2000
    assert summary.total_cost == pytest.approx(5.0)

    empty = await store.runs.summary(org, wf, since=now, until=now + timedelta(hours=1))
    assert empty.total == 0 and empty.success_rate is None
    assert empty.p50_duration_ms is None and empty.p95_duration_ms is None
    assert empty.total_tokens == 0 and empty.total_cost == 0
    other_org = await store.organizations.ensure("other")
    foreign = await store.runs.summary(other_org, wf, since=now - timedelta(days=9), until=now)
    assert foreign.total == 0


async def test_find_run_by_idempotency_key(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run(idempotency_key="order-42"))
    found = await store.runs.find_by_idempotency_key(workflow.organization_id, "order-42")
    assert found is not None and found.id == run.id and found.step_counts == {}
    assert await store.runs.find_by_idempotency_key(workflow.organization_id, "order-43") is None
    other_org = await store.organizations.ensure("other")
    assert await store.runs.find_by_idempotency_key(other_org, "order-42") is None
    # The driver's IntegrityError stops at the store: a Conflict of stepline's own.
    with pytest.raises(DuplicateError):
        await store.runs.create(workflow.run(idempotency_key="order-42"))


# --- cancel --------------------------------------------------------------------------------


async def _events(store: Store, run: RunRecord) -> list[str]:
    return [e.type for e in await store.events.list(run.id, organization_id=run.organization_id)]


async def test_cancelling_a_queued_run_cancels_it_and_its_steps_at_once(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    await store.steps.insert([new_step(run, 0), new_step(run, 1, status=StepStatus.completed)])
    cancelled = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert cancelled.status is RunStatus.cancelled
    assert cancelled.cancel_requested_at is not None
    assert cancelled.completed_at is not None
    assert cancelled.step_counts == {"cancelled": 1, "completed": 1}
    steps = {s.step_id: s for s in await store.steps.list(run.id)}
    assert steps["node0"].status is StepStatus.cancelled
    assert steps["node0"].status_reason == "run cancelled"
    assert steps["node0"].completed_at is None  # it never started
    assert steps["node1"].status is StepStatus.completed
    assert await _events(store, run) == ["run.queued", "step.cancelled", "run.cancelled"]
    # A cancelled run is never claimed.
    assert await store.runs.claim("worker-a", 30) is None

    again = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert again == cancelled
    assert await _events(store, run) == ["run.queued", "step.cancelled", "run.cancelled"]


async def test_cancelling_a_held_run_only_records_the_request(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    assert await store.runs.cancel_requested_at(run.id) is None
    requested = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert requested.status is RunStatus.running
    assert requested.lease_owner == "worker-a"
    assert await store.runs.cancel_requested_at(run.id) == requested.cancel_requested_at
    again = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert again.cancel_requested_at == requested.cancel_requested_at  # the first request stands
    assert await _events(store, run) == ["run.queued", "run.running"]
    # The worker then stops it as usual.
    finished = await store.runs.finish(run.id, "worker-a", status=RunStatus.cancelled)
    assert finished.status is RunStatus.cancelled


async def test_cancelling_an_orphaned_run_cancels_it_at_once(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    step = new_step(run, 0, status=StepStatus.running, started_at=utcnow())
    await store.steps.insert([step])
    await _set_run(store, run.id, lease_expires_at=utcnow() - timedelta(seconds=1))
    cancelled = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert cancelled.status is RunStatus.cancelled
    assert cancelled.lease_owner is None
    assert cancelled.duration_ms is not None
    stored = await store.steps.get(step.id)
    assert stored is not None and stored.status is StepStatus.cancelled
    assert stored.completed_at is not None


async def test_cancelling_a_finished_run_changes_nothing(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    done = await store.runs.finish(run.id, "worker-a", status=RunStatus.completed, output=1)
    after = await store.runs.request_cancel(workflow.organization_id, run.id)
    assert after == done.model_copy(update={"step_counts": {}})
    assert after.cancel_requested_at is None


async def test_cancelling_a_run_of_another_organization_is_not_found(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    other_org = await store.organizations.ensure("other")
    with pytest.raises(RunNotFoundError):
        await store.runs.request_cancel(other_org, run.id)
    with pytest.raises(RunNotFoundError):
        await store.runs.request_cancel(workflow.organization_id, uuid4())
    stored = await store.runs.get(run.id)
    assert stored is not None and stored.status is RunStatus.queued


# --- steps ---------------------------------------------------------------------------------


async def _run_with_steps(store: Store, workflow: Workflow, n: int) -> RunRecord:
    run = await store.runs.create(workflow.run())
    await store.steps.insert(
        [
            new_step(
                run,
                i // 3,  # three steps share each seq: step_id breaks the tie
                f"s{i:04d}",
                node_id=f"n{i % 4}",
                node_type="code" if i % 2 else "reshape",
                status=StepStatus.completed if i % 5 else StepStatus.error,
                loop_id="items" if i % 4 == 0 else None,
                iteration=i % 3 if i % 4 == 0 else None,
                inputs={"i": i},
                outputs={"double": 2 * i},
                handle_outputs={"out": i},
            )
            for i in range(n)
        ]
    )
    return run


async def test_step_pages_follow_execution_order_both_ways(
    store: Store, workflow: Workflow
) -> None:
    run = await _run_with_steps(store, workflow, 250)
    expected = [f"s{i:04d}" for i in range(250)]
    org = workflow.organization_id

    seen: list[str] = []
    page = await store.steps.page(run.id, organization_id=org, limit=40)
    while True:
        seen += [s.step_id for s in page.items]
        if page.next_cursor is None:
            break
        page = await store.steps.page(run.id, organization_id=org, limit=40, after=page.next_cursor)
    assert seen == expected

    back = [s.step_id for s in page.items]
    while page.prev_cursor is not None:
        page = await store.steps.page(
            run.id, organization_id=org, limit=40, before=page.prev_cursor
        )
        back = [s.step_id for s in page.items] + back
    assert back == expected


async def test_step_filters_combine(store: Store, workflow: Workflow) -> None:
    run = await _run_with_steps(store, workflow, 60)
    org = workflow.organization_id

    async def step_ids(**filters: Any) -> list[str]:
        page = await store.steps.page(run.id, organization_id=org, limit=1000, **filters)
        return [s.step_id for s in page.items]

    def where(test: Any) -> list[str]:
        return [f"s{i:04d}" for i in range(60) if test(i)]

    assert await step_ids(status=StepStatus.error) == where(lambda i: i % 5 == 0)
    assert await step_ids(node_id="n1") == where(lambda i: i % 4 == 1)
    assert await step_ids(node_type="reshape", status=StepStatus.completed) == where(
        lambda i: i % 2 == 0 and i % 5 != 0
    )
    assert await step_ids(loop_id="items", iteration=1) == where(
        lambda i: i % 4 == 0 and i % 3 == 1
    )
    assert await step_ids(node_id="missing") == []
    other_org = await store.organizations.ensure("other")
    assert (await store.steps.page(run.id, organization_id=other_org)).items == []


async def test_steps_without_io_leave_the_payloads_out(store: Store, workflow: Workflow) -> None:
    run = await _run_with_steps(store, workflow, 3)
    org = workflow.organization_id
    full = (await store.steps.page(run.id, organization_id=org)).items
    bare = (await store.steps.page(run.id, organization_id=org, include_io=False)).items
    assert full[1].inputs == {"i": 1} and full[1].outputs == {"double": 2}
    assert full[1].handle_outputs == {"out": 1}
    for step in bare:
        assert step.inputs is None and step.outputs is None
        assert step.handle_inputs is None and step.handle_outputs is None
    io = {"inputs", "outputs", "handle_inputs", "handle_outputs"}
    assert [s.model_dump(exclude=io) for s in bare] == [s.model_dump(exclude=io) for s in full]


async def test_one_step_by_uuid_or_by_step_id(store: Store, workflow: Workflow) -> None:
    run = await _run_with_steps(store, workflow, 3)
    org = workflow.organization_id
    by_name = await store.steps.find(org, run.id, "s0001")
    assert by_name is not None and by_name.outputs == {"double": 2}
    assert await store.steps.find(org, run.id, by_name.id) == by_name
    assert await store.steps.find(org, run.id, uuid4()) is None
    assert await store.steps.find(org, uuid4(), by_name.id) is None
    other_org = await store.organizations.ensure("other")
    assert await store.steps.find(other_org, run.id, by_name.id) is None


async def test_iter_steps_reads_every_step_in_chunks(store: Store, workflow: Workflow) -> None:
    run = await _run_with_steps(store, workflow, 101)
    org = workflow.organization_id
    chunks = [chunk async for chunk in store.steps.iter(run.id, organization_id=org, chunk=25)]
    assert [len(c) for c in chunks] == [25, 25, 25, 25, 1]
    assert [s.step_id for c in chunks for s in c] == [f"s{i:04d}" for i in range(101)]
    assert chunks[0][3].outputs == {"double": 6}

    one_node = [
        s.step_id
        async for chunk in store.steps.iter(run.id, organization_id=org, node_id="n2", chunk=7)
        for s in chunk
    ]
    assert one_node == [f"s{i:04d}" for i in range(101) if i % 4 == 2]
    other_org = await store.organizations.ensure("other")
    assert [c async for c in store.steps.iter(run.id, organization_id=other_org)] == []
