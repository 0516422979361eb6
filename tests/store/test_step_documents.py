"""The fast read path (`store.steps.page_documents`, `iter_documents`): the database writes
each step's JSON itself; these tests hold it to the model path (`store.steps.page` /
`iter`, then `to_json`) on SQLite and PostgreSQL, over every kind of column value.

On SQLite the documents are the same bytes; PostgreSQL renders its jsonb columns in its
own key order and spacing, so there they are compared as parsed JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pydantic_core
import pytest
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
from stepline.store import Store
from stepline.store.paging import InvalidCursor, Page
from stepline.store.step_json import IO_COLUMNS

AWKWARD = 'quote " backslash \\ newline \n tab \t ctrl \x01\x1f\x1e del \x7f é 中 😀 \u2028'
WHOLE_SECOND = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ODD_MICROS = datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC)

STEPS = 17 + 3 + 9  # rich, bare, partial (see rich_run)

PAYLOADS: list[Any] = [
    None,
    0,
    7,
    -3,
    1.5,
    0.1 + 0.2,
    1e100,
    -2.5e-8,
    12345678901234567890123,
    True,
    False,
    "",
    AWKWARD,
    [],
    {},
    [1, "two", None, 3.25, {"four": [5]}],
    {"z": 1, "a": {"nested": [True, None]}, "é": AWKWARD},
]


def _rich_step(run: RunRecord, seq: int, payload: Any) -> StepRecord:
    """A step whose every column holds something (the payload in the JSON ones)."""
    return new_step(
        run,
        seq,
        f"node-{seq}/{AWKWARD}" if seq % 3 == 0 else None,
        node_type="code",
        node_label=AWKWARD,
        user_id=uuid4(),
        status=StepStatus.error,
        status_reason=AWKWARD,
        started_at=WHOLE_SECOND,
        completed_at=ODD_MICROS + timedelta(seconds=seq),
        duration_ms=2**40 + seq,
        inputs=payload,
        outputs=payload,
        handle_inputs={"in": payload},
        handle_outputs={"out": payload},
        error=AWKWARD,
        error_stage=ErrorStage.execution,
        error_category=ErrorCategory.transient,
        error_details=ErrorDetails(
            type="ValueError", message=AWKWARD, traceback="line 1\nline 2", context={"k": payload}
        ),
        model="gpt-x",
        tokens=TokenUsage(prompt=3, completion=4, total=7),
        cost=CostBreakdown(total=0.25, input=0.1, output=None),
        retry_count=2,
        attempts=[
            Attempt(number=1, started_at=WHOLE_SECOND, status=StepStatus.error, error="boom"),
            Attempt(
                number=2,
                started_at=ODD_MICROS,
                completed_at=ODD_MICROS,
                status=StepStatus.error,
                error_category=ErrorCategory.permanent,
            ),
        ],
        loop_id="loop",
        iteration=seq,
        iteration_context=IterationContext(
            frames=[IterationFrame(container_id="loop", container_type="for_each", iteration=seq)]
        ),
        requires_human_review=seq % 2 == 0,
        human_reviewed_at=ODD_MICROS,
        human_review_approved=seq % 2 == 1,
        human_reviewer=AWKWARD,
        trace_spans=[{"name": "span", "payload": payload}],
        step_metadata={"meta": payload},
    )


def _model_docs(page_items: list[StepRecord], *, include_io: bool) -> list[str]:
    exclude = None if include_io else set(IO_COLUMNS)
    return [pydantic_core.to_json(step, exclude=exclude).decode() for step in page_items]


def _same(store: Store, fast: list[str], model: list[str]) -> None:
    assert [json.loads(doc) for doc in fast] == [json.loads(doc) for doc in model]
    if store.dialect == "sqlite":
        assert fast == model


async def _both_pages(
    store: Store, run: RunRecord, **options: Any
) -> tuple[Page[str], Page[StepRecord]]:
    fast = await store.steps.page_documents(run.id, organization_id=run.organization_id, **options)
    assert fast is not None
    options.pop("workflow_id", None)  # the fast path's check of the run; not a filter
    model = await store.steps.page(run.id, organization_id=run.organization_id, **options)
    return fast, model


@pytest.fixture
async def rich_run(store: Store, workflow: Workflow) -> RunRecord:
    run = await store.runs.create(workflow.run())
    n = len(PAYLOADS)
    bare = [new_step(run, n + i) for i in range(3)]  # every nullable column null
    partial = [  # one column set in a run of columns that are mostly all null
        new_step(run, n + 3, error="only the error"),
        new_step(run, n + 4, model="only-the-model", tokens=TokenUsage(total=1)),
        new_step(run, n + 5, loop_id="only-the-loop", iteration=0),
        new_step(run, n + 6, step_metadata={"only": "metadata"}),
        new_step(run, n + 7, handle_outputs={"only": "handle"}, requires_human_review=False),
        # No handles recorded: shown as the JSON handles of the inputs and outputs.
        new_step(run, n + 8, inputs={"a": [1, "\u00e9\n", 2.5]}, outputs=[None, {"b": True}]),
        new_step(run, n + 9, inputs={"only": "inputs"}),
        new_step(run, n + 10, outputs="only outputs", handle_inputs={"input-file-0": {}}),
        new_step(run, n + 11, workflow_id=uuid4()),  # not the run's workflow (last)
    ]
    rich = [_rich_step(run, i, p) for i, p in enumerate(PAYLOADS)]
    await store.steps.insert(rich + bare + partial)
    return run


@pytest.mark.parametrize("include_io", [True, False], ids=["with-io", "without-io"])
async def test_page_documents_are_the_models_json(
    store: Store, rich_run: RunRecord, include_io: bool
) -> None:
    fast, model = await _both_pages(store, rich_run, include_io=include_io, limit=1000)
    assert len(fast.items) == STEPS
    _same(store, fast.items, _model_docs(model.items, include_io=include_io))
    # Told the run's workflow (as the API does), each step still shows its own.
    told, _ = await _both_pages(
        store, rich_run, include_io=include_io, limit=1000, workflow_id=rich_run.workflow_id
    )
    _same(store, told.items, _model_docs(model.items, include_io=include_io))
    assert json.loads(told.items[-1])["workflow_id"] != str(rich_run.workflow_id)
    if not include_io:
        assert not IO_COLUMNS & set(json.loads(fast.items[0]))


async def test_documents_keep_every_field_in_the_models_order(
    store: Store, rich_run: RunRecord
) -> None:
    fast, _ = await _both_pages(store, rich_run, limit=1)
    assert list(json.loads(fast.items[0])) == list(StepRecord.model_fields)


async def test_pages_and_cursors_match_both_ways(store: Store, rich_run: RunRecord) -> None:
    fast, model = await _both_pages(store, rich_run, limit=4, include_io=False)
    pages = 1
    while True:
        _same(store, fast.items, _model_docs(model.items, include_io=False))
        assert (fast.next_cursor, fast.prev_cursor) == (model.next_cursor, model.prev_cursor)
        if fast.next_cursor is None:
            break
        fast, model = await _both_pages(
            store, rich_run, limit=4, include_io=False, after=fast.next_cursor
        )
        pages += 1
    assert pages == -(-STEPS // 4)
    while fast.prev_cursor is not None:
        fast, model = await _both_pages(store, rich_run, limit=4, before=fast.prev_cursor)
        _same(store, fast.items, _model_docs(model.items, include_io=True))
        assert (fast.next_cursor, fast.prev_cursor) == (model.next_cursor, model.prev_cursor)
        pages -= 1
    assert pages == 1


@pytest.mark.parametrize(
    "filters",
    [
        {"status": StepStatus.error},
        {"status": StepStatus.pending},
        {"node_id": "node17"},
        {"node_type": "code", "iteration": 4},
        {"loop_id": "loop", "iteration": 999},
    ],
    ids=["status", "status-pending", "node", "type-and-iteration", "nothing"],
)
async def test_filtered_pages_match(
    store: Store, rich_run: RunRecord, filters: dict[str, Any]
) -> None:
    fast, model = await _both_pages(store, rich_run, limit=7, **filters)
    _same(store, fast.items, _model_docs(model.items, include_io=True))
    assert (fast.next_cursor, fast.prev_cursor) == (model.next_cursor, model.prev_cursor)


async def test_chunks_are_the_models_json(store: Store, rich_run: RunRecord) -> None:
    org = rich_run.organization_id
    fast = [
        doc
        async for chunk in store.steps.iter_documents(rich_run.id, organization_id=org, chunk=3)
        for doc in chunk
    ]
    model = [
        step async for chunk in store.steps.iter(rich_run.id, organization_id=org) for step in chunk
    ]
    assert len(fast) == STEPS
    _same(store, fast, _model_docs(model, include_io=True))
    told = [
        doc
        async for chunk in store.steps.iter_documents(
            rich_run.id, organization_id=org, chunk=4, workflow_id=rich_run.workflow_id
        )
        for doc in chunk
    ]
    _same(store, told, _model_docs(model, include_io=True))
    one_node = [
        doc
        async for chunk in store.steps.iter_documents(
            rich_run.id, organization_id=org, node_id="node4", chunk=1
        )
        for doc in chunk
    ]
    assert [json.loads(doc)["step_id"] for doc in one_node] == ["node4"]


async def test_a_run_not_seen_is_none(
    store: Store, workflow: Workflow, rich_run: RunRecord
) -> None:
    org = rich_run.organization_id
    workspace = uuid4()
    in_workspace = await store.runs.create(workflow.run(workspace_id=workspace))

    async def page(run: RunRecord, **options: Any) -> Page[str] | None:
        options.setdefault("organization_id", org)
        return await store.steps.page_documents(run.id, **options)

    assert await page(rich_run, workflow_id=workflow.workflow_id) is not None
    assert await page(rich_run, workflow_id=uuid4()) is None
    assert await page(rich_run, organization_id=uuid4()) is None
    assert await page(RunRecord.model_validate({**rich_run.model_dump(), "id": uuid4()})) is None
    # A key of a workspace sees only that workspace's runs.
    assert await page(rich_run, workspace_id=workspace) is None
    seen = await page(in_workspace, workspace_id=workspace)
    assert seen is not None and seen.items == []

    head = await store.runs.head(org, in_workspace.id)
    assert head is not None
    assert (head.workflow_id, head.workspace_id, head.status) == (
        workflow.workflow_id,
        workspace,
        in_workspace.status,
    )
    assert head.workflow_version == in_workspace.workflow_version
    assert await store.runs.head(uuid4(), in_workspace.id) is None


async def test_bad_pages_are_refused_like_the_models(store: Store, rich_run: RunRecord) -> None:
    org = rich_run.organization_id
    with pytest.raises(InvalidCursor):
        await store.steps.page_documents(rich_run.id, organization_id=org, after="bm9wZQ")
    runs_cursor = (
        await store.runs.page(org, workflow_id=rich_run.workflow_id, limit=1)
    ).next_cursor
    if runs_cursor is not None:
        with pytest.raises(InvalidCursor):
            await store.steps.page_documents(rich_run.id, organization_id=org, after=runs_cursor)
    with pytest.raises(ValueError):
        await store.steps.page_documents(rich_run.id, organization_id=org, limit=0)
    with pytest.raises(ValueError):
        await store.steps.page_documents(rich_run.id, organization_id=org, after="a", before="b")


async def test_steps_without_recorded_handles_show_their_json_handles(
    store: Store, rich_run: RunRecord
) -> None:
    fast = await store.steps.page_documents(
        rich_run.id, organization_id=rich_run.organization_id, limit=1000
    )
    assert fast is not None
    shown = {doc["seq"]: doc for doc in map(json.loads, fast.items)}
    n = len(PAYLOADS)
    both = shown[n + 8]
    assert both["handle_inputs"] == {
        "input-json-0": {"type": "json", "data": {"a": [1, "\u00e9\n", 2.5]}}
    }
    assert both["handle_outputs"] == {
        "output-json-0": {"type": "json", "data": [None, {"b": True}]}
    }
    assert shown[n + 9]["handle_outputs"] is None  # nothing produced: no handle
    assert shown[n + 10]["handle_inputs"] == {"input-file-0": {}}  # recorded wins
    assert shown[n + 10]["handle_outputs"] == {
        "output-json-0": {"type": "json", "data": "only outputs"}
    }
    # The record itself stores nothing twice.
    stored = await store.steps.find(rich_run.organization_id, rich_run.id, shown[n + 8]["step_id"])
    assert stored is not None and stored.handle_inputs is None and stored.handle_outputs is None
