"""Finding the caller's records: another organization's, another workspace's, or another
workflow's than the one named is NotFound, never Forbidden."""

from __future__ import annotations

from uuid import UUID

from stepline.errors import NotFound
from stepline.records import RunRecord, StepRecord, WorkflowRecord
from stepline.service.context import Caller, ServiceContext
from stepline.store.run_head import RunHead


async def live_workflow(ctx: ServiceContext, caller: Caller, workflow_id: UUID) -> WorkflowRecord:
    """The caller's live workflow (in its workspace, when it has one)."""
    workflow = await ctx.store.workflows.get(caller.organization_id, workflow_id)
    if workflow is None or not caller.sees(workflow.workspace_id):
        raise NotFound(f"workflow {workflow_id} not found")
    return workflow


async def run_of(
    ctx: ServiceContext, caller: Caller, run_id: UUID, workflow_id: UUID | None = None
) -> RunRecord:
    """The caller's run (of `workflow_id`, when given), with its step counts."""
    run = await ctx.store.runs.get(run_id, caller.organization_id)
    if (
        run is None
        or (workflow_id is not None and run.workflow_id != workflow_id)
        or not caller.sees(run.workspace_id)
    ):
        raise NotFound(f"run {run_id} not found")
    return run


async def run_head(ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID) -> RunHead:
    """The caller's run of this workflow, without step counts (cheaper)."""
    head = await ctx.store.runs.head(caller.organization_id, run_id)
    if head is None or not head.visible(workflow_id, caller.workspace_id):
        raise NotFound(f"run {run_id} not found")
    return head


async def step_of(ctx: ServiceContext, caller: Caller, run_id: UUID, key: str) -> StepRecord:
    """The run's step named by its record's UUID (tried first) or its `step_id` string.

    The run must be the caller's (see `run_of`); this looks in its organization only.
    """
    org = caller.organization_id
    step: StepRecord | None = None
    try:
        as_uuid: UUID | None = UUID(key)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        step = await ctx.store.steps.find(org, run_id, as_uuid)
    if step is None:
        step = await ctx.store.steps.find(org, run_id, key)
    if step is None:
        raise NotFound(f"step {key!r} of run {run_id} not found")
    return step
