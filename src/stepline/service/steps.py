"""Reading a run's steps: a page of them (as stored JSON documents), one step, and the
values of the run's end nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from stepline.errors import NotFound
from stepline.records import RunRecord, StepRecord, StepStatus
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import run_of, step_of
from stepline.service.workflows import pinned_definition
from stepline.store.paging import MAX_PAGE_SIZE, Page
from stepline.store.run_head import RunHead
from stepline.store.types import MAX_INT


class StepsQuery(BaseModel):
    """Which steps of a run, and which page of them; filters combine with AND."""

    model_config = ConfigDict(extra="ignore")

    status: StepStatus | None = None
    node_id: str | None = None
    node_type: str | None = None
    loop_id: str | None = None
    iteration: int | None = Field(default=None, ge=0, le=MAX_INT)
    include_io: bool = True
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    after: str | None = None
    before: str | None = None


async def step_documents(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID, query: StepsQuery
) -> Page[str]:
    """A page of the run's steps in execution order, each the JSON text of its record
    (without inputs and outputs unless `include_io`), checked in the same read to be of the
    caller's run of this workflow."""
    page = await ctx.store.steps.page_documents(
        run_id,
        organization_id=caller.organization_id,
        workflow_id=workflow_id,
        workspace_id=caller.workspace_id,
        status=query.status,
        node_id=query.node_id,
        node_type=query.node_type,
        loop_id=query.loop_id,
        iteration=query.iteration,
        include_io=query.include_io,
        limit=query.limit,
        after=query.after,
        before=query.before,
    )
    if page is None:
        raise NotFound(f"run {run_id} not found")
    return page


async def get_step(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID, step_key: str
) -> StepRecord:
    """One step of the caller's run, by its record's UUID (tried first) or its step_id."""
    await run_of(ctx, caller, run_id, workflow_id)
    return await step_of(ctx, caller, run_id, step_key)


async def run_steps(
    ctx: ServiceContext, caller: Caller, run_id: UUID, workflow_id: UUID | None = None
) -> list[StepRecord]:
    """Every step of the caller's run (of `workflow_id`, when given) in execution order,
    with inputs and outputs."""
    await run_of(ctx, caller, run_id, workflow_id)
    found: list[StepRecord] = []
    async for chunk in ctx.store.steps.iter(run_id, organization_id=caller.organization_id):
        found.extend(chunk)
    return found


def stream_step_documents(
    ctx: ServiceContext,
    caller: Caller,
    run: RunRecord | RunHead,
    *,
    node_id: str | None = None,
    chunk: int = 1000,
) -> AsyncIterator[list[str]]:
    """The steps of the caller's run (found by `run_of` or `run_head`), of one node if
    given, as JSON documents with I/O in execution order, `chunk` at a time (a download)."""
    return ctx.store.steps.iter_documents(
        run.id,
        organization_id=caller.organization_id,
        node_id=node_id,
        chunk=chunk,
        workflow_id=run.workflow_id,
    )


async def node_has_steps(
    ctx: ServiceContext, caller: Caller, run: RunRecord | RunHead, node_id: str
) -> bool:
    """Whether the caller's run has any step of the node (a loop body's node has several)."""
    probe = await ctx.store.steps.page(
        run.id, organization_id=caller.organization_id, node_id=node_id, include_io=False, limit=1
    )
    return bool(probe.items)


@dataclass(frozen=True, slots=True)
class RunValues:
    run: RunRecord
    end_nodes: dict[str, Any]
    """Each end node's outputs; None for one that did not complete."""


async def run_values(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID
) -> RunValues:
    """The run and the outputs of its end nodes (`end` nodes, else the nodes without
    successors, as the engine's output)."""
    run = await run_of(ctx, caller, run_id, workflow_id)
    ends = end_nodes(await pinned_definition(ctx, run))
    values: dict[str, Any] = dict.fromkeys(ends)
    wanted = set(ends)
    async for chunk in ctx.store.steps.iter(run.id, organization_id=caller.organization_id):
        for step in chunk:
            if step.step_id in wanted and step.status is StepStatus.completed:
                values[step.step_id] = step.outputs
    return RunValues(run, values)


def end_nodes(definition: dict[str, Any]) -> list[str]:
    """The `end` nodes, else the nodes without outgoing edges."""
    nodes = [n for n in definition.get("nodes") or [] if isinstance(n, dict)]
    ends = [str(n.get("id")) for n in nodes if n.get("type") == "end"]
    if ends:
        return ends
    sources = {e.get("from") for e in definition.get("edges") or [] if isinstance(e, dict)}
    return [str(n.get("id")) for n in nodes if n.get("id") not in sources]
