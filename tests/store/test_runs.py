"""Runs: numbering, claims and leases, finishing, reading back."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from uuid import uuid4

import pytest
from store_helpers import Workflow, new_step

from stepline.records import ErrorDetails, RunStatus, StepStatus
from stepline.store import (
    LeaseLostError,
    RunNotFoundError,
    Store,
    WorkflowNotFoundError,
)


async def test_run_numbers_count_up_per_workflow(store: Store, workflow: Workflow) -> None:
    numbers = [(await store.runs.create(workflow.run())).run_number for _ in range(3)]
    assert numbers == [1, 2, 3]
    other = await store.workflows.save(workflow.organization_id, {"name": "other"})
    run = await store.runs.create(
        workflow.run(workflow_id=other.workflow.id, workflow_version=other.version.version)
    )
    assert run.run_number == 1


async def test_concurrent_run_creation_gives_distinct_numbers(
    store: Store, workflow: Workflow
) -> None:
    created = await asyncio.gather(*(store.runs.create(workflow.run()) for _ in range(20)))
    assert sorted(r.run_number for r in created) == list(range(1, 21))


async def test_run_of_unknown_workflow_is_refused(store: Store, workflow: Workflow) -> None:
    with pytest.raises(WorkflowNotFoundError, match="does not exist"):
        await store.runs.create(workflow.run(workflow_id=uuid4()))


async def test_created_run_reads_back_equal(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(
        workflow.run(inputs={"url": "https://example.com", "n": 3}, trigger="cli")
    )
    stored = await store.runs.get(run.id)
    assert stored == run.model_copy(update={"step_counts": {}})
    assert stored is not None and stored.created_at.tzinfo == UTC


async def test_get_run_in_another_organization_is_none(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    other = await store.organizations.ensure("other")
    assert await store.runs.get(run.id, other) is None
    assert await store.runs.get(run.id, workflow.organization_id) is not None


async def test_claim_takes_the_oldest_queued_run(store: Store, workflow: Workflow) -> None:
    first = await store.runs.create(workflow.run())
    await store.runs.create(workflow.run())
    claimed = await store.runs.claim("worker-a", 30)
    assert claimed is not None
    assert claimed.id == first.id
    assert claimed.status == RunStatus.running
    assert claimed.lease_owner == "worker-a"
    assert claimed.attempt == 1
    assert claimed.started_at is not None and claimed.started_at.tzinfo == UTC
    assert claimed.lease_expires_at is not None
    assert claimed.lease_expires_at - claimed.started_at == timedelta(seconds=30)
    assert await store.runs.get(first.id) == claimed.model_copy(update={"step_counts": {}})


async def test_claim_returns_none_when_nothing_is_claimable(
    store: Store, workflow: Workflow
) -> None:
    assert await store.runs.claim("worker-a", 30) is None
    run = await store.runs.create(workflow.run())
    assert await store.runs.claim("worker-a", 30) is not None
    # Held under a live lease: nobody else may take it.
    assert await store.runs.claim("worker-b", 30) is None
    assert await store.runs.claim("worker-b", 30, run_id=run.id) is None


async def test_claim_of_one_run_ignores_older_ones(store: Store, workflow: Workflow) -> None:
    await store.runs.create(workflow.run())
    wanted = await store.runs.create(workflow.run())
    claimed = await store.runs.claim("worker-a", 30, run_id=wanted.id)
    assert claimed is not None and claimed.id == wanted.id


async def test_run_orphaned_by_an_expired_lease_is_claimed_again(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    first = await store.runs.claim("dead-worker", 0.05)
    assert first is not None
    await asyncio.sleep(0.1)
    second = await store.runs.claim("worker-b", 30)
    assert second is not None and second.id == run.id
    assert second.lease_owner == "worker-b"
    assert second.attempt == 2
    # The run started when it was first claimed; a takeover does not restart the clock.
    assert second.started_at == first.started_at


async def test_finished_and_waiting_runs_are_not_claimable(
    store: Store, workflow: Workflow
) -> None:
    done = await store.runs.create(workflow.run())
    await store.runs.claim("w", 30)
    await store.runs.finish(done.id, "w", status=RunStatus.completed)
    waiting = await store.runs.create(workflow.run())
    await store.runs.claim("w", 30)
    await store.runs.finish(waiting.id, "w", status=RunStatus.waiting_for_human)
    assert await store.runs.claim("w", 30) is None


async def test_exactly_one_of_racing_stores_wins_a_run(
    store_url: str, store: Store, workflow: Workflow
) -> None:
    rivals = [await Store.connect(store_url) for _ in range(2)]
    stores = [store, *rivals] * 3
    try:
        for _ in range(5):  # several rounds: a lost race is a matter of timing
            run = await store.runs.create(workflow.run())
            results = await asyncio.gather(
                *(s.runs.claim(f"worker-{i}", 30, run_id=run.id) for i, s in enumerate(stores))
            )
            winners = [r for r in results if r is not None]
            assert len(winners) == 1, f"{len(winners)} workers claimed run {run.id}"
            assert winners[0].attempt == 1
    finally:
        for rival in rivals:
            await rival.close()


async def test_racing_stores_claim_each_run_exactly_once(
    store_url: str, store: Store, workflow: Workflow
) -> None:
    created = [await store.runs.create(workflow.run()) for _ in range(6)]
    rivals = [await Store.connect(store_url) for _ in range(2)]
    stores = [store, *rivals]

    async def claim_all(s: Store, worker: str) -> list[object]:
        taken = []
        while (run := await s.runs.claim(worker, 30)) is not None:
            taken.append(run.id)
        return taken

    try:
        taken = await asyncio.gather(
            *(claim_all(s, f"worker-{i}-{j}") for i, s in enumerate(stores) for j in range(2))
        )
    finally:
        for rival in rivals:
            await rival.close()
    claimed = [run_id for ids in taken for run_id in ids]
    assert sorted(map(str, claimed)) == sorted(str(r.id) for r in created)


async def test_renew_lease_extends_only_the_holders_lease(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    claimed = await store.runs.claim("worker-a", 30)
    assert claimed is not None and claimed.lease_expires_at is not None
    assert await store.runs.renew_lease(run.id, "worker-a", 60)
    renewed = await store.runs.get(run.id)
    assert renewed is not None and renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > claimed.lease_expires_at + timedelta(seconds=25)
    assert not await store.runs.renew_lease(run.id, "worker-b", 60)


async def test_renew_lease_fails_after_another_worker_took_the_run(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    await store.runs.claim("slow-worker", 0.05)
    await asyncio.sleep(0.1)
    assert await store.runs.claim("worker-b", 30) is not None
    assert not await store.runs.renew_lease(run.id, "slow-worker", 30)
    assert await store.runs.renew_lease(run.id, "worker-b", 30)


async def test_finish_run_records_outcome_timings_and_releases_lease(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    claimed = await store.runs.claim("worker-a", 30)
    assert claimed is not None and claimed.started_at is not None
    await store.steps.insert([new_step(run, 1, status=StepStatus.completed)])
    await asyncio.sleep(0.05)
    finished = await store.runs.finish(
        run.id,
        "worker-a",
        status=RunStatus.completed,
        output={"summary": "short"},
        total_tokens=42,
        total_cost=0.25,
    )
    assert finished.status == RunStatus.completed
    assert finished.output == {"summary": "short"}
    assert finished.total_tokens == 42 and finished.total_cost == 0.25
    assert finished.lease_owner is None and finished.lease_expires_at is None
    assert finished.completed_at is not None and finished.completed_at.tzinfo == UTC
    expected_ms = (finished.completed_at - claimed.started_at).total_seconds() * 1000
    assert finished.duration_ms is not None and finished.duration_ms >= 50
    assert abs(finished.duration_ms - expected_ms) <= 1
    stored = await store.runs.get(run.id)
    assert stored == finished.model_copy(update={"step_counts": {"completed": 1}})


async def test_failed_run_keeps_its_error_details(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    await store.runs.claim("worker-a", 30)
    details = ErrorDetails(type="KeyError", message="'x'", traceback="Traceback...", context={})
    finished = await store.runs.finish(
        run.id,
        "worker-a",
        status=RunStatus.failed,
        error="fetch failed",
        error_details=details,
    )
    assert finished.error == "fetch failed"
    assert finished.error_details == details
    stored = await store.runs.get(run.id)
    assert stored is not None and stored.error_details == details


async def test_finish_run_by_a_worker_that_lost_the_lease_is_refused(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    await store.runs.claim("slow-worker", 0.05)
    await asyncio.sleep(0.1)
    await store.runs.claim("worker-b", 30)
    with pytest.raises(LeaseLostError, match="slow-worker"):
        await store.runs.finish(run.id, "slow-worker", status=RunStatus.completed)
    stored = await store.runs.get(run.id)
    assert stored is not None and stored.status == RunStatus.running


async def test_finish_run_without_worker_cancels_a_queued_run(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    finished = await store.runs.finish(run.id, None, status=RunStatus.cancelled)
    assert finished.status == RunStatus.cancelled
    assert finished.completed_at is not None
    assert finished.duration_ms is None  # it never started


async def test_releasing_for_human_review_keeps_the_run_open(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    await store.runs.claim("worker-a", 30)
    waiting = await store.runs.finish(run.id, "worker-a", status=RunStatus.waiting_for_human)
    assert waiting.lease_owner is None
    assert waiting.completed_at is None and waiting.duration_ms is None
    # The review call re-queues it; the next claim resumes it.
    await store.runs.finish(run.id, None, status=RunStatus.queued)
    resumed = await store.runs.claim("worker-b", 30)
    assert resumed is not None and resumed.id == run.id and resumed.attempt == 2


async def test_finish_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError):
        await store.runs.finish(uuid4(), None, status=RunStatus.cancelled)


async def test_list_runs_newest_first_with_filters_and_counts(
    store: Store, workflow: Workflow
) -> None:
    base = workflow.run().created_at
    runs = [
        await store.runs.create(workflow.run(created_at=base + timedelta(seconds=i)))
        for i in range(4)
    ]
    await store.steps.insert(
        [new_step(runs[0], 1, status=StepStatus.completed), new_step(runs[0], 2)]
    )
    await store.runs.claim("w", 30)  # takes runs[0], the oldest
    listed = await store.runs.list(workflow.organization_id)
    assert [r.id for r in listed] == [r.id for r in reversed(runs)]
    assert listed[-1].step_counts == {"completed": 1, "pending": 1}
    assert listed[0].step_counts == {}
    assert [r.id for r in await store.runs.list(limit=2)] == [runs[3].id, runs[2].id]
    running = await store.runs.list(status=RunStatus.running)
    assert [r.id for r in running] == [runs[0].id]
    other = await store.workflows.save(workflow.organization_id, {"name": "other"})
    assert await store.runs.list(workflow_id=other.workflow.id) == []
    assert await store.runs.list(await store.organizations.ensure("nobody")) == []
