"""The `for_each` node kind: runs its body once per item of a list, in order or in parallel."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import (
    IterationOutcome,
    NodeContext,
    NodeError,
    NodeKind,
    NodePaused,
    NodeResult,
)
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage


class ForEachConfig(BaseModel):
    """What to iterate and how many iterations may run at once."""

    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(
        description="The list to iterate, usually a template such as "
        "'{{ nodes.fetch.output.rows }}'; each iteration sees `loop.item` and `loop.index`.",
    )
    concurrency: int = Field(
        default=1, ge=1, le=256, description="How many iterations may run at the same time."
    )


def failure_entry(outcome: IterationOutcome) -> dict[str, Any]:
    """How a failed iteration appears in a loop's result list under `on_error: continue`."""
    return {"error": outcome.error, "iteration": outcome.index, "step_id": outcome.failed_step_id}


class ForEachNode(NodeKind):
    """Outputs the ordered list of each iteration's result."""

    type = "for_each"
    config_model = ForEachConfig
    description = "Runs its body once per item; the output is the list of iteration results."
    container = True

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ForEachConfig, ctx.config)
        body = ctx.body
        if body is None:
            raise NodeError("for_each needs the engine's body runner", stage=ErrorStage.execution)
        keep_going = ctx.node.on_error == "continue"
        outcomes: list[IterationOutcome | None] = [None] * len(config.items)
        failed = asyncio.Event()
        gate = asyncio.Semaphore(config.concurrency)

        async def iterate(index: int, item: Any) -> None:
            async with gate:
                if failed.is_set():
                    return  # a failure stops the loop: no new iteration starts
                outcome = await body.run_iteration(index, {"item": item, "index": index})
                outcomes[index] = outcome
                if outcome.status == "error" and not keep_going:
                    failed.set()

        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(config.items):
                group.create_task(iterate(index, item))
        return loop_result(ctx, outcomes, keep_going, {"iterations": len(config.items)})


def loop_result(
    ctx: NodeContext,
    outcomes: list[IterationOutcome | None],
    keep_going: bool,
    metadata: dict[str, Any],
) -> NodeResult:
    """The loop's result from its iterations: an error, a pause, or the ordered outputs."""
    errors = [o for o in outcomes if o is not None and o.status == "error"]
    if errors and not keep_going:
        first = errors[0]
        message = f"iteration {first.index} failed: {first.error}"
        raise NodeError(
            message,
            category=ErrorCategory.permanent,
            details=ErrorDetails(
                type="IterationFailed",
                message=message,
                context={"iteration": first.index, "step_id": first.failed_step_id},
            ),
            metadata={**metadata, "failed_iterations": [o.index for o in errors]},
        )
    if any(o is not None and o.status == "waiting" for o in outcomes):
        raise NodePaused(f"'{ctx.node.id}' waits for a review inside its body")
    results = [
        failure_entry(o) if o.status == "error" else o.output for o in outcomes if o is not None
    ]
    if errors:
        metadata = {**metadata, "failed_iterations": [o.index for o in errors]}
    return NodeResult(output=results, metadata=metadata)
