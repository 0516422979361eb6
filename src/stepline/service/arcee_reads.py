"""Reads Arcee Orchestra's API asks for in one call that stepline's own splits or pages:
every workflow with its definition (Arcee's `GET /workflows` is one unpaged list), a
workflow's latest definition (its diagram), and a window of a workflow's runs each with
its steps (an Arcee run item carries every node's output)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stepline.records import RunRecord, StepRecord, WorkflowRecord
from stepline.service import workflows
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import live_workflow
from stepline.service.runs import window_runs
from stepline.service.steps import run_steps
from stepline.store.paging import MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class WorkflowWithDefinition:
    workflow: WorkflowRecord
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunWithSteps:
    run: RunRecord
    steps: list[StepRecord]


async def all_workflows(ctx: ServiceContext, caller: Caller) -> list[WorkflowWithDefinition]:
    """The caller's live workflows (of its workspace, when it has one), newest first, each
    with its latest definition: every page, read a page at a time."""
    found: list[WorkflowWithDefinition] = []
    after: str | None = None
    while True:
        page = await ctx.store.workflows.page(
            caller.organization_id,
            workspace_id=caller.workspace_id,
            limit=MAX_PAGE_SIZE,
            after=after,
        )
        definitions = await ctx.store.workflows.latest_definitions(
            caller.organization_id, page.items
        )
        found += [WorkflowWithDefinition(w, definitions.get(w.id, {})) for w in page.items]
        if page.next_cursor is None:
            return found
        after = page.next_cursor


async def latest_definition(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID
) -> dict[str, Any]:
    """The caller's live workflow's latest definition (NotFound unless it is the caller's)."""
    return await workflows.latest_definition(ctx, await live_workflow(ctx, caller, workflow_id))


async def runs_with_steps(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, *, offset: int, limit: int
) -> list[RunWithSteps]:
    """The workflow's runs newest first, `limit` from `offset`, each with its steps in
    execution order (NotFound unless the workflow is the caller's and live)."""
    window = await window_runs(ctx, caller, workflow_id, offset=offset, limit=limit)
    return [
        RunWithSteps(run, await run_steps(ctx, caller, run.id, workflow_id)) for run in window.runs
    ]
