"""What a loop outputs once its iterations are done: a failure, a pause, or the results."""

from __future__ import annotations

from typing import Any

from stepline.nodes.base import IterationOutcome, NodeContext, NodeError, NodePaused, NodeResult
from stepline.records import ErrorCategory, ErrorDetails


def failure_entry(outcome: IterationOutcome) -> dict[str, Any]:
    """How a failed iteration appears in a loop's result list under `on_error: continue`."""
    return {"error": outcome.error, "iteration": outcome.index, "step_id": outcome.failed_step_id}


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
