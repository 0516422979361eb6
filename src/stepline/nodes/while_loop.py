"""The `while_loop` node kind: runs its body while a condition holds, up to a bound."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import (
    BodyRunner,
    IterationOutcome,
    NodeContext,
    NodeError,
    NodeKind,
    NodeResult,
)
from stepline.nodes.loop_result import loop_result
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage

CONDITION_FALSE = "condition_false"
MAX_ITERATIONS_REACHED = "max_iterations_reached"
ERROR = "error"


class WhileLoopConfig(BaseModel):
    """The condition and the bound."""

    model_config = ConfigDict(extra="forbid")

    condition: str = Field(
        min_length=1,
        description="A Jinja expression (no braces), evaluated before each iteration with "
        "`loop.index` (the next iteration) and `loop.previous` (the last iteration's result, "
        "none before the first); the body runs while it is truthy.",
    )
    max_iterations: int = Field(
        ge=1, le=100_000, description="The most iterations the loop may run (required)."
    )


class WhileLoopNode(NodeKind):
    """Outputs the list of iteration results; records why it stopped."""

    type = "while_loop"
    config_model = WhileLoopConfig
    description = "Runs its body while a condition holds, at most max_iterations times."
    container = True
    raw_fields = frozenset({"condition"})
    expression_fields = frozenset({"condition"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(WhileLoopConfig, ctx.config)
        body = ctx.body
        if body is None:
            raise NodeError("while_loop needs the engine's body runner")
        keep_going = ctx.node.on_error == "continue"
        outcomes: list[IterationOutcome | None] = []
        previous: Any = None
        reason = MAX_ITERATIONS_REACHED
        for index in range(config.max_iterations):
            loop: Mapping[str, Any] = {"index": index, "previous": previous}
            if not _condition(body, config.condition, loop, index, outcomes):
                reason = CONDITION_FALSE
                break
            outcome = await body.run_iteration(index, loop)
            outcomes.append(outcome)
            if outcome.status == "waiting":
                break  # the next condition needs this iteration's result
            if outcome.status == "error" and not keep_going:
                reason = ERROR
                break
            previous = outcome.output
        else:
            # Checked once more: a loop that ends exactly when its condition turns false
            # stopped on the condition, not on the bound.
            loop = {"index": config.max_iterations, "previous": previous}
            if not _condition(body, config.condition, loop, config.max_iterations, outcomes):
                reason = CONDITION_FALSE
        metadata = {"iterations": len(outcomes), "termination_reason": reason}
        return loop_result(ctx, outcomes, keep_going, metadata)


def _condition(
    body: BodyRunner,
    condition: str,
    loop: Mapping[str, Any],
    index: int,
    outcomes: list[IterationOutcome | None],
) -> bool:
    try:
        return bool(body.evaluate(condition, loop))
    except Exception as exc:
        message = f"the condition ({condition!r}) before iteration {index} failed: {exc}"
        raise NodeError(
            message,
            stage=ErrorStage.routing,
            category=ErrorCategory.permanent,
            details=ErrorDetails(type=type(exc).__name__, message=str(exc)),
            metadata={"iterations": len(outcomes), "termination_reason": ERROR},
        ) from exc
