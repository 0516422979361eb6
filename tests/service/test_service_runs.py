"""Starting, cancelling, retrying, replaying and reading runs through the service verbs,
on a real store (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import uuid

import pytest
from service_defs import Wakes, two_inputs

from stepline import service
from stepline.errors import Conflict, InvalidRequest, NotFound
from stepline.records import RunStatus
from stepline.service import Caller, ServiceContext, StepsQuery
from stepline.store import Store
from support.engine import execute

INPUTS = {"name": "Ada", "greeting": "Hello"}


async def caller_of(store: Store, name: str = "default") -> Caller:
    return Caller(await store.organizations.ensure(name))


async def test_start_run_pins_the_latest_version_and_wakes_the_worker(
    ctx: ServiceContext, store: Store, wakes: Wakes
) -> None:
    caller = await caller_of(store)
    definition = two_inputs()
    saved = await service.create_workflow(ctx, caller, definition)
    await service.save_workflow(
        ctx, caller, {**definition, "description": "v2"}, workflow_id=saved.workflow.id
    )

    started = await service.start_run(ctx, caller, saved.workflow.id, INPUTS)

    assert not started.replayed
    assert started.run.workflow_version == 2
    assert started.run.status is RunStatus.queued
    assert wakes.count == 1


async def test_start_run_refuses_inputs_the_schema_refuses(
    ctx: ServiceContext, store: Store, wakes: Wakes
) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())

    with pytest.raises(service.InvalidRunInputs) as refused:
        await service.start_run(ctx, caller, saved.workflow.id, {"name": 7})

    assert isinstance(refused.value, InvalidRequest)
    assert refused.value.details and refused.value.issues
    assert wakes.count == 0


async def test_a_repeated_idempotency_key_returns_the_first_run(
    ctx: ServiceContext, store: Store, wakes: Wakes
) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())
    other = await service.create_workflow(ctx, caller, two_inputs())

    first = await service.start_run(ctx, caller, saved.workflow.id, INPUTS, idempotency_key="k1")
    again = await service.start_run(ctx, caller, saved.workflow.id, INPUTS, idempotency_key="k1")

    assert again.replayed and again.run.id == first.run.id
    assert wakes.count == 1
    with pytest.raises(Conflict):
        await service.start_run(ctx, caller, other.workflow.id, INPUTS, idempotency_key="k1")
    with pytest.raises(InvalidRequest):
        await service.start_run(ctx, caller, saved.workflow.id, INPUTS, idempotency_key=" ")


async def test_another_organizations_ids_are_not_found(ctx: ServiceContext, store: Store) -> None:
    owner = await caller_of(store, "owner")
    stranger = await caller_of(store, "stranger")
    saved = await service.create_workflow(ctx, owner, two_inputs())
    workflow_id = saved.workflow.id
    run = (await service.start_run(ctx, owner, workflow_id, INPUTS)).run
    await execute(store, run)
    step = await service.get_step(ctx, owner, workflow_id, run.id, "greet")

    attempts = [
        service.live_workflow(ctx, stranger, workflow_id),
        service.start_run(ctx, stranger, workflow_id, INPUTS),
        service.run_of(ctx, stranger, run.id),
        service.cancel_run(ctx, stranger, workflow_id, run.id),
        service.retry_run(ctx, stranger, workflow_id, run.id),
        service.replay_run(ctx, stranger, workflow_id, run.id, from_node="shout"),
        service.review_step(ctx, stranger, workflow_id, run.id, "greet", approved=True),
        service.get_step(ctx, stranger, workflow_id, run.id, str(step.id)),
        service.step_documents(ctx, stranger, workflow_id, run.id, StepsQuery()),
        service.wait_for_run(ctx, stranger, run.id, 0.1),
        service.run_values(ctx, stranger, workflow_id, run.id),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    # Nor is a run found under another workflow's id than its own.
    with pytest.raises(NotFound):
        await service.run_of(ctx, owner, run.id, uuid.uuid4())


async def test_cancel_stops_a_queued_run_and_is_idempotent(
    ctx: ServiceContext, store: Store
) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run

    cancelled = await service.cancel_run(ctx, caller, saved.workflow.id, run.id)
    again = await service.cancel_run(ctx, caller, saved.workflow.id, run.id)

    assert cancelled.status is RunStatus.cancelled
    assert again.status is RunStatus.cancelled


async def test_retry_of_a_run_that_did_not_fail_is_a_conflict(
    ctx: ServiceContext, store: Store
) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run
    await execute(store, run)

    with pytest.raises(Conflict):
        await service.retry_run(ctx, caller, saved.workflow.id, run.id)


async def test_replay_merges_the_given_inputs_over_the_originals(
    ctx: ServiceContext, store: Store, wakes: Wakes
) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())
    original = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run
    await execute(store, original)

    replay = await service.replay_run(
        ctx, caller, saved.workflow.id, original.id, from_node="greet", inputs={"name": "Grace"}
    )

    assert replay.replay_of == original.id
    assert replay.inputs == {"name": "Grace", "greeting": "Hello"}
    outcome = await execute(store, replay)
    assert outcome.run.status is RunStatus.completed
    assert outcome.steps["greet"].outputs == {"text": "Hello, Grace"}
    # Without inputs, the original's; a merged value the schema refuses is refused.
    same = await service.replay_run(ctx, caller, saved.workflow.id, original.id, from_node="shout")
    assert same.inputs == INPUTS
    with pytest.raises(InvalidRequest):
        await service.replay_run(
            ctx, caller, saved.workflow.id, original.id, from_node="greet", inputs={"name": None}
        )


async def test_steps_are_read_by_page_and_by_step_id(ctx: ServiceContext, store: Store) -> None:
    caller = await caller_of(store)
    saved = await service.create_workflow(ctx, caller, two_inputs())
    run = (await service.start_run(ctx, caller, saved.workflow.id, INPUTS)).run
    await execute(store, run)

    page = await service.step_documents(
        ctx, caller, saved.workflow.id, run.id, StepsQuery(include_io=False)
    )
    by_name = await service.get_step(ctx, caller, saved.workflow.id, run.id, "greet")
    by_id = await service.get_step(ctx, caller, saved.workflow.id, run.id, str(by_name.id))
    values = await service.run_values(ctx, caller, saved.workflow.id, run.id)

    assert len(page.items) == 2 and '"inputs"' not in page.items[0]
    assert by_id == by_name
    assert values.end_nodes == {"shout": {"done": True}}
    with pytest.raises(NotFound):
        await service.get_step(ctx, caller, saved.workflow.id, run.id, "nope")
