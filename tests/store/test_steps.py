"""Step records: insert, update, read back whole, in order, counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from store_helpers import Workflow, new_step

from stepline.records import (
    Attempt,
    CostBreakdown,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    IterationContext,
    IterationFrame,
    RunRecord,
    StepRecord,
    StepStatus,
    TokenUsage,
)
from stepline.store import DuplicateError, StateConflictError, StepNotFoundError, Store

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def full_step(run: RunRecord) -> StepRecord:
    """A step with every field set to something other than its default."""
    return StepRecord(
        id=uuid4(),
        run_id=run.id,
        workflow_id=run.workflow_id,
        workflow_version=run.workflow_version,
        organization_id=run.organization_id,
        user_id=uuid4(),
        node_id="extract",
        step_id="loop1_iter_2_extract",
        node_type="llm",
        node_label="Extract the fields",
        seq=7,
        status=StepStatus.error,
        status_reason="the model refused",
        started_at=T0,
        completed_at=T0 + timedelta(seconds=2, microseconds=5),
        duration_ms=2000,
        inputs={"prompt": "héllo ✓", "n": 3, "ratio": 0.1, "nested": [1, {"a": None}]},
        outputs=["a", 1, 2.5, True, None],
        handle_inputs={"in": {"text": "x"}},
        handle_outputs={"out": [1, 2]},
        input_document={"file_id": "f1", "filename": "a.pdf", "mime_type": "application/pdf"},
        output_document={"file_id": "f2", "filename": "b.pdf", "mime_type": "application/pdf"},
        split_documents={"Invoice": {"file_id": "f3", "filename": "c.pdf"}},
        error="rate limited",
        error_stage=ErrorStage.execution,
        error_category=ErrorCategory.quota,
        error_details=ErrorDetails(
            type="RateLimitError",
            message="429",
            traceback="Traceback (most recent call last): ...",
            error_code="rate_limit",
            context={"retry_after": 3},
        ),
        model="gpt-test",
        tokens=TokenUsage(prompt=10, completion=5, total=15),
        cost=CostBreakdown(total=0.0125, input=0.01, output=0.0025, currency="EUR"),
        retry_count=2,
        attempts=[
            Attempt(
                number=1,
                started_at=T0,
                completed_at=T0 + timedelta(seconds=1),
                status=StepStatus.error,
                error="429",
                error_category=ErrorCategory.quota,
            ),
            Attempt(number=2, started_at=T0 + timedelta(seconds=1), status=StepStatus.running),
        ],
        loop_id="loop1",
        iteration=2,
        iteration_context=IterationContext(
            frames=[IterationFrame(container_id="loop1", container_type="loop", iteration=2)]
        ),
        requires_human_review=True,
        human_reviewed_at=T0 + timedelta(minutes=5),
        human_review_approved=False,
        human_reviewer="ada@example.com",
        trace_spans=[{"name": "llm.call", "duration_ms": 1999}],
        step_metadata={"source": "test", "tags": ["a", "b"]},
        created_at=T0 - timedelta(seconds=1),
        updated_at=T0 + timedelta(seconds=3),
    )


def test_full_step_sets_every_field_away_from_its_default() -> None:
    # Keeps the round-trip test below honest when StepRecord gains a field.
    step = full_step(RunRecord(workflow_id=uuid4(), workflow_version=1, organization_id=uuid4()))
    for name, field in StepRecord.model_fields.items():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if default is PydanticUndefined:
            continue
        assert getattr(step, name) != default, f"full_step leaves {name} at its default"


async def test_every_step_field_round_trips(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    step = full_step(run)
    await store.steps.insert([step])
    assert await store.steps.get(step.id) == step
    assert await store.steps.list(run.id) == [step]


async def test_update_writes_every_mutable_field(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    pending = new_step(run, 7, step_id="loop1_iter_2_extract", node_type="llm")
    await store.steps.insert([pending])
    full = full_step(run)
    # Same identity as the inserted step; everything else as in full_step.
    identity = {
        name: getattr(pending, name)
        for name in ("id", "user_id", "node_id", "node_label", "loop_id", "iteration")
    }
    identity["iteration_context"] = None
    identity["created_at"] = pending.created_at
    updated = full.model_copy(update=identity)
    await store.steps.update(updated)
    assert await store.steps.get(pending.id) == updated


async def test_update_can_clear_fields_back_to_null(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    step = full_step(run)
    await store.steps.insert([step])
    cleared = step.model_copy(
        update={"outputs": None, "error": None, "error_details": None, "tokens": None}
    )
    await store.steps.update(cleared)
    stored = await store.steps.get(step.id)
    assert stored == cleared
    assert stored is not None and stored.outputs is None


async def test_update_of_a_step_never_inserted_is_not_found(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    with pytest.raises(StepNotFoundError, match="never inserted"):
        await store.steps.update(new_step(run, 1))


async def test_steps_list_in_seq_then_step_id_order(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    other_run = await store.runs.create(workflow.run())
    steps = [
        new_step(run, 2, "b"),
        new_step(run, 1, "z"),
        new_step(run, 2, "a"),
        new_step(run, 0, "start"),
    ]
    await store.steps.insert(steps)
    await store.steps.insert([new_step(other_run, 0, "elsewhere")])
    listed = await store.steps.list(run.id)
    assert [s.step_id for s in listed] == ["start", "z", "a", "b"]


async def test_step_id_is_unique_within_a_run(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    await store.steps.insert([new_step(run, 1, "fetch")])
    # The driver's IntegrityError stops at the store's boundary: a DuplicateError.
    with pytest.raises(DuplicateError, match="unique"):
        await store.steps.insert([new_step(run, 2, "fetch")])
    assert [s.seq for s in await store.steps.list(run.id)] == [1]


async def test_a_step_of_no_stored_run_is_a_state_conflict(
    store: Store, workflow: Workflow
) -> None:
    # Another constraint than a unique index (the run's foreign key) is translated too.
    with pytest.raises(StateConflictError, match="refused the write") as refused:
        await store.steps.insert([new_step(workflow.run(), 1, "fetch")])
    assert not isinstance(refused.value, DuplicateError)


async def test_get_unknown_step_is_none(store: Store) -> None:
    assert await store.steps.get(uuid4()) is None


async def test_step_counts_per_status(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    assert await store.steps.counts(run.id) == {}
    statuses = [StepStatus.completed] * 3 + [StepStatus.error, StepStatus.running]
    await store.steps.insert([new_step(run, i, status=s) for i, s in enumerate(statuses)])
    assert await store.steps.counts(run.id) == {"completed": 3, "error": 1, "running": 1}
    stored = await store.runs.get(run.id)
    assert stored is not None
    assert stored.step_counts == {"completed": 3, "error": 1, "running": 1}


async def test_timestamps_come_back_timezone_aware_utc(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    # Written in UTC+02:00: stored as the same instant, read back in UTC.
    local = timezone(timedelta(hours=2))
    started = datetime(2026, 3, 1, 14, 0, 0, 500, tzinfo=local)
    await store.steps.insert([new_step(run, 1, started_at=started)])
    (stored,) = await store.steps.list(run.id)
    assert stored.started_at == started
    for value in (stored.started_at, stored.created_at, stored.updated_at):
        assert value is not None and value.tzinfo == UTC
    assert stored.started_at is not None and stored.started_at.hour == 12


async def test_naive_timestamp_is_refused(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    step = new_step(run, 1, started_at=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await store.steps.insert([step])
