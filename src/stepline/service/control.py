"""Changing the course of a run: a person's review, retry, and replay."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from uuid import UUID

from stepline.errors import Detail, InvalidRequest
from stepline.records import RunRecord, StepRecord
from stepline.service.context import Caller, ServiceContext
from stepline.service.inputs import (
    check_inputs_document,
    check_output_document,
    check_run_inputs,
    run_redactor,
)
from stepline.service.lookup import run_of, step_of
from stepline.spec.graph import WorkflowGraph
from stepline.spec.validate import WorkflowInvalid, load_workflow, secret_references


class _Proposed:
    def __repr__(self) -> str:
        return "PROPOSED"


PROPOSED: Final[Any] = _Proposed()
"""`review_step`'s default output: the step ends with the output it proposed."""


@dataclass(frozen=True, slots=True)
class Review:
    """The decision as recorded, and the run as it is now."""

    changed: bool
    """False when this same decision had already been recorded (nothing done)."""
    step: StepRecord
    run: RunRecord


async def review_step(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    run_id: UUID,
    step_key: str,
    *,
    approved: bool,
    output: Any = PROPOSED,
    comment: str | None = None,
) -> Review:
    """Record a person's decision on a step under review (an edited `output` with an
    approval), and wake the worker to resume the run. The same decision again changes
    nothing; a different one is a Conflict."""
    edit: dict[str, Any] = {}
    if output is not PROPOSED:
        check_output_document(output, ctx.limits, "body.output")
        edit["output"] = output
    await run_of(ctx, caller, run_id, workflow_id)
    step = await step_of(ctx, caller, run_id, step_key)
    decision = await ctx.store.runs.decide_review(
        caller.organization_id,
        run_id,
        step.id,
        approved=approved,
        reviewer=caller.actor,
        comment=comment,
        **edit,
    )
    if decision.changed:
        ctx.wake_workers()
    run = await ctx.store.runs.get(run_id, caller.organization_id) or decision.run
    return Review(changed=decision.changed, step=decision.step, run=run)


async def retry_run(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID
) -> RunRecord:
    """Queue a failed or cancelled run again, to go on from its failed steps (its completed
    steps are not run again); a Conflict for a run in any other state."""
    await run_of(ctx, caller, run_id, workflow_id)
    run = await ctx.store.runs.retry(caller.organization_id, run_id)
    ctx.wake_workers()
    return await ctx.store.runs.get(run_id, caller.organization_id) or run


async def replay_run(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    run_id: UUID,
    *,
    from_node: str,
    inputs: dict[str, Any] | None = None,
    workflow_version: int | None = None,
) -> RunRecord:
    """A new run linked to the original (`replay_of`) that reuses the original's outputs
    for every step upstream of `from_node` and runs the rest again.

    `inputs` are merged over the original run's (top-level keys replace the original's,
    the others are kept); `workflow_version` defaults to the original's.
    """
    original = await run_of(ctx, caller, run_id, workflow_id)
    number = workflow_version or original.workflow_version
    version = await ctx.store.workflows.version(original.workflow_id, number)
    if version is None:
        _invalid("body.workflow_version", f"the workflow has no version {number}")
    try:
        spec = await asyncio.to_thread(load_workflow, version.definition, ctx.kinds)
    except WorkflowInvalid as exc:
        details = [Detail(f"version {number}", str(issue)) for issue in exc.issues]
        raise InvalidRequest(
            f"version {number} of the workflow is no longer valid", details=details
        ) from None
    top_level = [node.id for node in spec.nodes]
    if from_node not in top_level:
        _invalid(
            "body.from_node",
            f"{from_node!r} is not a top-level node of version {number} "
            f"(its nodes: {', '.join(top_level)})",
        )
    if inputs is not None:
        check_inputs_document(inputs, ctx.limits, "body.inputs")
    merged = {**original.inputs, **(inputs or {})}
    check_run_inputs(version.definition.get("inputs") or {"type": "object"}, merged)
    redactor = await run_redactor(
        ctx.secrets, secret_references(spec), original.organization_id, original.workspace_id
    )
    replay = await ctx.store.runs.replay(
        original,
        reuse=WorkflowGraph(spec).upstream(from_node),
        inputs=redactor.data(merged),
        workflow_version=number,
        from_node=from_node,
    )
    ctx.wake_workers()
    return await ctx.store.runs.get(replay.id, caller.organization_id) or replay


def _invalid(field: str, message: str) -> NoReturn:
    raise InvalidRequest(f"{field}: {message}", details=[Detail(field, message)])
