"""The `sub_workflow` node kind: runs another workflow as a child run and outputs its result."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodePaused, NodeResult
from stepline.records import ErrorCategory, ErrorDetails


class SubWorkflowConfig(BaseModel):
    """Which workflow to run, and with what."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(
        min_length=1, description="The child workflow's name or id (same organization)."
    )
    version: int | None = Field(
        default=None, ge=1, description="A pinned version; default: the latest at start."
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The child run's inputs (templates resolved)."
    )


class SubWorkflowNode(NodeKind):
    """Starts the child run (parent_run_id and parent_step_id link it) and waits for it."""

    type = "sub_workflow"
    config_model = SubWorkflowConfig
    description = "Runs another workflow as a child run; outputs the child's result."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(SubWorkflowConfig, ctx.config)
        if ctx.children is None:
            raise NodeError("sub_workflow needs the engine's child runs service")
        outcome = await ctx.children.run(config.workflow, config.version, config.inputs)
        link = {"child_run_id": str(outcome.run_id)}
        if outcome.status == "waiting_for_human":
            raise NodePaused(f"child run {outcome.run_id} waits for a review")
        if outcome.status != "completed":
            message = f"child run {outcome.run_id} {outcome.status}: {outcome.error}"
            raise NodeError(
                message,
                category=ErrorCategory.permanent,
                details=ErrorDetails(type="ChildRunFailed", message=message, context=link),
                metadata=link,
            )
        return NodeResult(output=outcome.output, metadata=link)
