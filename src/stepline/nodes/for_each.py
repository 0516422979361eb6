"""The `for_each` node kind: runs its body once per item of a list, in order or in parallel."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import IterationOutcome, NodeContext, NodeError, NodeKind, NodeResult
from stepline.nodes.loop_result import loop_result
from stepline.records import ErrorStage


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
