"""Reads (and the catalog verbs) Onepin's dialect needs that the other verbs do not offer:
counted, searchable workflow listings, a workflow's run statistics, a run's node tallies, a
summary with an average duration, and the files a workflow's runs referred to.

Each is built on the store's existing verbs (no new query, no migration), so some walk
every page of a listing: fine for the hundreds of workflows or the thousands of runs of a
window a person looks at, and said where it matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from stepline.errors import Conflict, Detail, NotFound
from stepline.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    RunRecord,
    RunStatus,
    WorkflowRecord,
)
from stepline.service import workflows
from stepline.service.context import Caller, ServiceContext
from stepline.service.files import file_references
from stepline.service.lookup import live_workflow
from stepline.service.workflows import issue_text
from stepline.spec.graph import WorkflowGraph
from stepline.spec.inputs import validate_run_inputs
from stepline.spec.models import WorkflowSpec
from stepline.spec.validate import validate_workflow
from stepline.store import SavedWorkflow, WorkflowNameTakenError, WorkflowNotFoundError
from stepline.store.files import FileRecord
from stepline.store.paging import MAX_PAGE_SIZE

EVER = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = datetime(9999, 1, 1, tzinfo=UTC)
MAX_UPLOAD_SCAN_RUNS = 1000
"""How many of a workflow's newest runs `workflow_uploads` reads the inputs of."""


# --- workflows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowWindow:
    workflows: list[WorkflowRecord]
    total: int


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    """How a workflow's runs went, all time."""

    runs_count: int
    counts: dict[str, int]
    """Runs per stepline status (every status, 0 included)."""
    last_run: RunRecord | None


async def window_workflows(
    ctx: ServiceContext, caller: Caller, *, offset: int, limit: int, search: str | None
) -> WorkflowWindow:
    """The caller's live workflows, newest first, `limit` from `offset`, with the total;
    `search` keeps those whose name or description holds it (case-insensitive).

    Reads every page of the catalog (the store pages by cursor only)."""
    needle = search.casefold() if search else None
    matched = [
        workflow
        async for workflow in workflows.all_workflows(ctx, caller)
        if needle is None
        or needle in workflow.name.casefold()
        or needle in workflow.description.casefold()
    ]
    return WorkflowWindow(matched[offset : offset + limit], len(matched))


async def latest_definitions(
    ctx: ServiceContext, caller: Caller, workflows: Sequence[WorkflowRecord]
) -> dict[UUID, dict[str, Any]]:
    """Each workflow's latest definition by id, in one read."""
    return await ctx.store.workflows.latest_definitions(caller.organization_id, workflows)


async def workflow_stats(ctx: ServiceContext, caller: Caller, workflow_id: UUID) -> WorkflowStats:
    """The workflow's run counts per status (all time) and its newest run."""
    summary = await ctx.store.runs.summary(
        caller.organization_id,
        workflow_id,
        since=EVER,
        until=NEVER,
        workspace_id=caller.workspace_id,
    )
    newest, _ = await ctx.store.runs.window(
        caller.organization_id,
        workflow_id=workflow_id,
        workspace_id=caller.workspace_id,
        limit=1,
    )
    return WorkflowStats(summary.total, summary.counts, newest[0] if newest else None)


def _name_taken(exc: WorkflowNameTakenError) -> Conflict:
    return Conflict(str(exc), details=[Detail("body.name", str(exc))])


async def create_named_workflow(
    ctx: ServiceContext, caller: Caller, definition: dict[str, Any], *, field: str
) -> SavedWorkflow:
    """A new workflow of the definition (validated); Conflict if its name is taken."""
    try:
        return await workflows.create_workflow(ctx, caller, definition, field=field)
    except WorkflowNameTakenError as exc:
        raise _name_taken(exc) from None


async def replace_definition(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    definition: dict[str, Any],
    *,
    field: str,
) -> SavedWorkflow:
    """The definition as the workflow's next version (unchanged: the same version)."""
    try:
        return await workflows.save_workflow(
            ctx, caller, definition, workflow_id=workflow_id, field=field
        )
    except WorkflowNotFoundError:
        raise NotFound(f"workflow {workflow_id} not found") from None
    except WorkflowNameTakenError as exc:
        raise _name_taken(exc) from None


async def delete_workflow(ctx: ServiceContext, caller: Caller, workflow_id: UUID) -> None:
    """Soft-delete the workflow (its runs are kept)."""
    await workflows.delete_workflow(ctx, caller, workflow_id)


async def duplicate_workflow(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, *, name: str
) -> SavedWorkflow:
    """A new workflow named `name` holding a copy of the latest definition."""
    try:
        return await workflows.duplicate_workflow(ctx, caller, workflow_id, name=name)
    except WorkflowNameTakenError as exc:
        raise _name_taken(exc) from None


# --- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeTally:
    """How many nodes a run's version has, and how many of them have finished."""

    total_nodes: int
    finished_nodes: int


def count_nodes(definition: dict[str, Any]) -> int:
    """The definition's nodes, loop bodies' included."""
    count = 0
    for node in definition.get("nodes") or []:
        if isinstance(node, dict):
            count += 1
            body = node.get("body")
            if isinstance(body, dict):
                count += count_nodes(body)
    return count


async def node_tallies(
    ctx: ServiceContext, caller: Caller, runs: Sequence[RunRecord]
) -> dict[UUID, NodeTally]:
    """Each run's node tally (one small read per run, one per distinct version)."""
    sizes: dict[tuple[UUID, int], int] = {}
    tallies: dict[UUID, NodeTally] = {}
    finished = {status.value for status in FINISHED_STEP_STATUSES}
    for run in runs:
        key = (run.workflow_id, run.workflow_version)
        if key not in sizes:
            version = await ctx.store.workflows.version(*key)
            sizes[key] = count_nodes(version.definition) if version is not None else 0
        statuses = await ctx.store.steps.node_statuses(caller.organization_id, run.id)
        done = sum(1 for status in statuses.values() if status in finished)
        tallies[run.id] = NodeTally(sizes[key], done)
    return tallies


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """How the workflow's runs created in [since, until) went."""

    counts: dict[str, int]
    """Runs per stepline status (every status, 0 included)."""
    total: int
    pass_rate: float | None
    """completed / finished; None if none finished."""
    average_duration_seconds: float | None
    """Of the finished runs with a duration; None if there are none."""


async def summarize_runs(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, *, since: datetime, until: datetime
) -> WindowSummary:
    """The window's counts (the store's summary) and the finished runs' mean duration (read
    from every run of the window, a page at a time)."""
    await live_workflow(ctx, caller, workflow_id)
    summary = await ctx.store.runs.summary(
        caller.organization_id,
        workflow_id,
        since=since,
        until=until,
        workspace_id=caller.workspace_id,
    )
    durations = 0
    timed = 0
    after: str | None = None
    while True:
        page = await ctx.store.runs.page(
            caller.organization_id,
            workflow_id=workflow_id,
            workspace_id=caller.workspace_id,
            created_from=since,
            created_to=until,
            limit=MAX_PAGE_SIZE,
            after=after,
        )
        for run in page.items:
            if run.status in FINISHED_RUN_STATUSES and run.duration_ms is not None:
                durations += run.duration_ms
                timed += 1
        if page.next_cursor is None:
            break
        after = page.next_cursor
    average = round(durations / timed / 1000, 3) if timed else None
    return WindowSummary(summary.counts, summary.total, summary.success_rate, average)


async def workflow_uploads(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID
) -> list[FileRecord]:
    """The live files the inputs of the workflow's newest runs (up to
    MAX_UPLOAD_SCAN_RUNS) refer to, each once, newest reference first."""
    await live_workflow(ctx, caller, workflow_id)
    seen: set[UUID] = set()
    found: list[FileRecord] = []
    offset = 0
    while offset < MAX_UPLOAD_SCAN_RUNS:
        batch, total = await ctx.store.runs.window(
            caller.organization_id,
            workflow_id=workflow_id,
            workspace_id=caller.workspace_id,
            statuses=tuple(RunStatus),
            offset=offset,
            limit=MAX_PAGE_SIZE,
        )
        for run in batch:
            for _, value in file_references(run.inputs, "inputs"):
                try:
                    file_id = UUID(str(value))
                except ValueError:
                    continue
                if file_id in seen:
                    continue
                seen.add(file_id)
                record = await ctx.store.files.get(caller.organization_id, file_id)
                if record is not None:
                    found.append(record)
        offset += MAX_PAGE_SIZE
        if offset >= total:
            break
    return found


# --- a dry run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedNode:
    node_id: str
    node_type: str
    label: str
    parent: str | None
    """The loop whose body holds the node (run once per iteration); None at the top."""


@dataclass(frozen=True, slots=True)
class Preview:
    """What a run of the workflow's latest version with these inputs would do."""

    version: int
    issues: list[Detail]
    """Why it would not start (the definition, the inputs); empty: it would."""
    nodes: list[PlannedNode]
    """The nodes in execution order (a loop's body after its loop)."""


def _planned(spec: WorkflowSpec, parent: str | None = None) -> list[PlannedNode]:
    planned: list[PlannedNode] = []
    graph = WorkflowGraph(spec)
    for node_id in graph.topological_order():
        node = graph.nodes[node_id]
        planned.append(PlannedNode(node.id, node.type, node.label or node.id, parent))
        if node.body is not None:
            body = WorkflowSpec.model_construct(
                name=spec.name, nodes=node.body.nodes, edges=node.body.edges
            )
            planned.extend(_planned(body, node.id))
    return planned


async def preview_run(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, inputs: dict[str, Any]
) -> Preview:
    """Validate the latest version and the inputs, and order the nodes: nothing is stored
    or executed."""
    workflow = await live_workflow(ctx, caller, workflow_id)
    version = await ctx.store.workflows.version(workflow.id, workflow.latest_version)
    if version is None:
        raise NotFound(f"version {workflow.latest_version} of workflow {workflow_id} not found")
    spec, problems = await asyncio.to_thread(validate_workflow, version.definition, ctx.kinds)
    issues = [Detail("definition" + p.path.removeprefix("$"), issue_text(p)) for p in problems]
    schema = version.definition.get("inputs") or {"type": "object"}
    issues += [
        Detail("body.inputs" + p.path.removeprefix("$"), p.message)
        for p in validate_run_inputs(schema, inputs)
    ]
    nodes = _planned(spec) if spec is not None and not problems else []
    return Preview(version.version, issues, nodes)
