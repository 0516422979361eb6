"""Steps are listed in the order the workflow runs them, on SQLite and PostgreSQL: every
listing of the store, the keys the engine assigns, and pages while steps are being added."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import sqlalchemy as sa
from store_helpers import Workflow, new_step

from stepline import step_order
from stepline.records import RunRecord, StepRecord
from stepline.store import Store
from stepline.store.tables import steps
from support.engine import execute, run_workflow
from support.step_order import CREATION_ORDER, EXPECTED_ORDER, NESTED_LOOPS


def test_keys_compare_as_their_paths_do() -> None:
    rng = random.Random(18)
    numbers = [0, 1, 15, 16, 255, 256, 4095, 4096, 2**32, 2**64 - 1]
    numbers += [rng.randrange(2 ** rng.randrange(1, 64)) for _ in range(300)]
    assert sorted(numbers, key=step_order.component) == sorted(numbers)
    paths = [tuple(rng.choice(numbers) for _ in range(rng.randrange(1, 5))) for _ in range(500)]
    paths += [p[:1] for p in paths]  # a loop step's key is a prefix of its iterations'
    assert sorted(paths, key=lambda p: step_order.order_key(*p)) == sorted(paths)
    assert all(step_order.decode(step_order.order_key(*p)) == list(p) for p in paths)
    assert step_order.component(16) == "110" and step_order.component(0) == "00"
    assert all(step_order.order_key(*p) < step_order.UNPLACED for p in paths)


def test_a_step_without_a_key_sorts_by_seq() -> None:
    step = StepRecord.model_validate(
        {
            "run_id": "6f1c44b0-3e0b-4b43-9f0e-3f3a4c1d2e10",
            "workflow_id": "6f1c44b0-3e0b-4b43-9f0e-3f3a4c1d2e10",
            "workflow_version": 1,
            "organization_id": "6f1c44b0-3e0b-4b43-9f0e-3f3a4c1d2e10",
            "node_id": "a",
            "step_id": "a",
            "node_type": "code",
            "node_label": "a",
            "seq": 17,
        }
    )
    assert step.order_key == step_order.seq_key(17) == "111"


async def test_every_listing_follows_the_order_the_workflow_runs(store: Store) -> None:
    out = await run_workflow(store, NESTED_LOOPS)
    assert out.run.status == "completed", out.run.error
    run = out.run
    org = run.organization_id
    assert [s.step_id for s in await store.steps.list(run.id)] == EXPECTED_ORDER
    # seq stays the creation order: without the key, the loops' steps came last.
    by_seq = sorted(out.steps.values(), key=lambda s: s.seq)
    assert [s.step_id for s in by_seq] == CREATION_ORDER != EXPECTED_ORDER
    keys = [out.steps[step_id].order_key for step_id in EXPECTED_ORDER]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert out.steps["outer_iter_1_inner_iter_2_leaf"].order_key == step_order.order_key(
        1, 1, 1, 2, 0
    )

    # Pages of every size, forwards and backwards, on both read paths.
    for limit in (1, 4, 7, 100):
        assert await _page_forwards(store, run, limit) == EXPECTED_ORDER
        assert await _page_forwards(store, run, limit, documents=True) == EXPECTED_ORDER
        assert await _page_backwards(store, run, limit) == EXPECTED_ORDER
        assert await _page_backwards(store, run, limit, documents=True) == EXPECTED_ORDER
    # Chunked reads (downloads, the run's data).
    for chunk in (1, 5, 1000):
        chunks = store.steps.iter(run.id, organization_id=org, chunk=chunk)
        assert [s.step_id async for c in chunks for s in c] == EXPECTED_ORDER
        docs = [
            json.loads(doc)["step_id"]
            async for c in store.steps.iter_documents(run.id, organization_id=org, chunk=chunk)
            for doc in c
        ]
        assert docs == EXPECTED_ORDER
    # Filtered: one node's steps keep the same relative order.
    leaves = await store.steps.page(run.id, organization_id=org, node_id="leaf")
    assert [s.step_id for s in leaves.items] == [s for s in EXPECTED_ORDER if s.endswith("leaf")]
    inner = await store.steps.page(run.id, organization_id=org, loop_id="inner", limit=2)
    first_two = ["outer_iter_0_inner_iter_0_leaf", "outer_iter_0_inner_iter_1_leaf"]
    assert [s.step_id for s in inner.items] == first_two


async def _page_forwards(store: Store, run: RunRecord, limit: int, documents: bool = False) -> Any:
    seen: list[str] = []
    after: str | None = None
    while True:
        items, after, _ = await _page(store, run, limit, after=after, documents=documents)
        seen += items
        if after is None:
            return seen


async def _page_backwards(store: Store, run: RunRecord, limit: int, documents: bool = False) -> Any:
    """Every step, read from the last page back to the first with `before` cursors."""
    items, after, before = await _page(store, run, limit, documents=documents)
    while after is not None:  # find the last page
        items, after, before = await _page(store, run, limit, after=after, documents=documents)
    seen = items
    while before is not None:
        items, _, before = await _page(store, run, limit, before=before, documents=documents)
        seen = items + seen
    return seen


async def _page(
    store: Store,
    run: RunRecord,
    limit: int,
    *,
    after: str | None = None,
    before: str | None = None,
    documents: bool = False,
) -> tuple[list[str], str | None, str | None]:
    """A page's step_ids, next cursor, prev cursor."""
    org = run.organization_id
    if documents:
        page = await store.steps.page_documents(
            run.id, organization_id=org, limit=limit, after=after, before=before, include_io=False
        )
        assert page is not None
        ids = [json.loads(doc)["step_id"] for doc in page.items]
        return ids, page.next_cursor, page.prev_cursor
    steps = await store.steps.page(
        run.id, organization_id=org, limit=limit, after=after, before=before, include_io=False
    )
    return [s.step_id for s in steps.items], steps.next_cursor, steps.prev_cursor


@pytest.mark.parametrize("documents", [False, True], ids=["records", "documents"])
async def test_pages_stay_stable_while_steps_are_added(
    store: Store, workflow: Workflow, documents: bool
) -> None:
    """A run still going gains steps between two page reads: the keyset never skips nor
    repeats a step that was there, and lists the new ones that sort after its cursor."""
    run = await store.runs.create(workflow.run())
    keys: dict[str, str] = {}

    def step(step_id: str, *path: int) -> StepRecord:
        keys[step_id] = step_order.order_key(*path)
        return new_step(run, len(keys), step_id, order_key=keys[step_id])

    # The top-level steps, created when the run starts; top0 and top3 are loops.
    await store.steps.insert([step(f"top{p}", p) for p in range(6)])
    initial = set(keys)
    seen: list[str] = []
    behind: set[str] = set()
    ahead: set[str] = set()
    after: str | None = None
    while True:
        items, after, _ = await _page(store, run, 2, after=after, documents=documents)
        seen += items
        if after is None:
            break
        if len(keys) > 30:
            continue  # the run stopped adding steps
        # Meanwhile two loops start an iteration each: their steps sort right after
        # the loop's, behind the cursor once the reader is past it (always, for the
        # loop top0), ahead of it before (top3); and a late step sorts ahead.
        n = len(keys)
        new = [step(f"a{n}", 0, n, 0), step(f"b{n}", 0, n, 1), step(f"c{n}", 3, n, 0)]
        new.append(step(f"late{n}", 50 + n))
        await store.steps.insert(new)
        for added in new:
            (behind if keys[added.step_id] < keys[seen[-1]] else ahead).add(added.step_id)
    assert len(seen) == len(set(seen)), "a step was listed twice"
    assert initial <= set(seen), "a step that was there was skipped"
    assert ahead <= set(seen), "a step added ahead of the cursor was not listed"
    assert behind and not behind & set(seen)  # those show on the next read
    assert [keys[s] for s in seen] == sorted(keys[s] for s in seen)
    everything = [s.step_id for s in await store.steps.list(run.id)]
    assert everything == sorted(keys, key=keys.__getitem__)
    assert await _page_forwards(store, run, 3, documents) == everything


async def test_a_replay_on_another_version_places_its_copies_in_that_version(
    store: Store,
) -> None:
    # Version 2 adds a first node: every position moves. The replay's copies of v1's
    # steps (start, and outer with its iterations) take their place in v2.
    original = await run_workflow(store, NESTED_LOOPS)
    v2 = {**NESTED_LOOPS, "nodes": [_reshape_node("zero"), *NESTED_LOOPS["nodes"]]}
    saved = await store.workflows.save(original.run.organization_id, v2)
    assert saved.version.version == 2
    replay = await store.runs.replay(
        original.run, reuse={"start", "outer"}, inputs={}, workflow_version=2, from_node="last"
    )
    done = await execute(store, replay)
    assert done.run.status == "completed", done.run.error
    assert [s.step_id for s in await store.steps.list(replay.id)] == ["zero", *EXPECTED_ORDER]
    copied = done.steps["outer_iter_1_inner_iter_0_leaf"]
    assert copied.step_metadata is not None and "replayed_from" in copied.step_metadata
    fresh = await run_workflow(store, v2)
    assert {s.step_id: s.order_key for s in done.steps.values()} == {
        s.step_id: s.order_key for s in fresh.steps.values()
    }
    # The definition's own keys are the engine's.
    order = step_order.DefinitionOrder(v2)
    for step in fresh.steps.values():
        frames = step.iteration_context.frames if step.iteration_context else []
        path = [(f.container_id, f.iteration) for f in frames]
        assert order.key(step.node_id, path) == step.order_key


def _reshape_node(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "reshape", "config": {"output": node_id}}


async def test_a_page_of_steps_is_a_range_scan_of_the_order_index(
    store: Store, workflow: Workflow
) -> None:
    run = await store.runs.create(workflow.run())
    await store.steps.insert([new_step(run, i) for i in range(50)])
    query = (
        sa.select(steps.c.step_id)
        .where(
            steps.c.run_id == run.id,
            steps.c.organization_id == run.organization_id,
            sa.tuple_(steps.c.order_key, steps.c.step_id)
            > sa.tuple_(sa.literal("05", steps.c.order_key.type), sa.literal("node5")),
        )
        .order_by(steps.c.order_key, steps.c.step_id)
        .limit(10)
    )

    def plan(conn: sa.Connection) -> str:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            return "\n".join(str(row[-1]) for row in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))

    text = await store.database.read(plan)
    assert "ix_steps_run_id_order_key_step_id" in text, text
    assert "TEMP B-TREE" not in text and "Sort" not in text, text
