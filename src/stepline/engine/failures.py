"""When a run cannot be executed: it fails alone, with the reason on the run and the step.

A run cannot be executed when something it holds cannot be loaded, stored or serialised:
its workflow version, its inputs, a step's inputs or output, a step's record as a whole.
That is the run's own problem, and the same claim would meet it again, so the run fails
at once (one claim) instead of leaving its lease to expire and be claimed again; the
worker goes on claiming other runs. `error_details.context.error_stage` on the run, and
`error_stage` on the step, say where: `document_fetch` (the definition),
`input_collection` (inputs), `output_storage` (an output, or a step's record).
"""

from __future__ import annotations

import traceback
from datetime import datetime

from stepline.documents.text import describe_error, storable_text
from stepline.errors import InvalidRequest
from stepline.nodes.base import NodeError
from stepline.records import (
    Attempt,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    StepRecord,
    StepStatus,
    utcnow,
)


class RunNotExecutable(InvalidRequest):
    """The run cannot go on: what it needs cannot be loaded, stored or serialised."""

    def __init__(self, reason: str, *, stage: ErrorStage, step_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.step_id = step_id


def run_failure(
    reason: str,
    stage: ErrorStage,
    exc: BaseException | None = None,
    step_id: str | None = None,
) -> ErrorDetails:
    """The run's error_details for a run that could not be executed."""
    context: dict[str, str] = {"error_stage": stage.value}
    if step_id is not None:
        context["step_id"] = step_id
    return ErrorDetails(
        type=type(exc).__name__ if exc is not None else "RunNotExecutable",
        message=reason,
        traceback=None if exc is None else storable_text("".join(traceback.format_exception(exc))),
        context=context,
    )


def mark_unstorable(step: StepRecord, exc: BaseException) -> RunNotExecutable:
    """Turn `step`, whose record the store refused, into what is left to record of it;
    return the error that fails its run.

    The step keeps its identity, times and attempts, and says why it failed; the values it
    held (inputs, outputs, metadata: what could not be stored) are left out. A step
    refused as it started was refused its inputs; otherwise its result.
    """
    stage = (
        ErrorStage.input_collection
        if step.status is StepStatus.running and step.outputs is None
        else ErrorStage.output_storage
    )
    reason = f"the step's record could not be stored: {describe_error(exc)}"
    now = utcnow()
    step.status = StepStatus.error
    step.status_reason = None
    step.completed_at = now
    if step.started_at is not None:
        step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
    step.inputs = step.outputs = step.handle_inputs = step.handle_outputs = None
    worker = (step.step_metadata or {}).get("worker")
    step.trace_spans = None
    step.step_metadata = {"worker": worker} if isinstance(worker, str) else None
    step.error = reason
    step.error_stage = stage
    step.error_category = ErrorCategory.permanent
    step.error_details = ErrorDetails(type=type(exc).__name__, message=reason)
    step.attempts = [_storable_attempt(attempt, now) for attempt in step.attempts]
    return RunNotExecutable(f"step '{step.step_id}': {reason}", stage=stage, step_id=step.step_id)


def _storable_attempt(attempt: Attempt, now: datetime) -> Attempt:
    update: dict[str, object] = {}
    if attempt.error is not None:
        update["error"] = storable_text(attempt.error)
    if attempt.status in (StepStatus.running, StepStatus.waiting_for_human):
        update["status"] = StepStatus.error
        update["completed_at"] = now
    return attempt.model_copy(update=update) if update else attempt


def storable_error(error: NodeError) -> NodeError:
    """`error` with its texts storable (`storable_text`): a node's message can hold anything
    its code raised or a server answered, NUL included, which PostgreSQL refuses."""
    error.message = storable_text(error.message)
    texts = {
        name: storable_text(value)
        for name in ("type", "message", "traceback")
        if isinstance(value := getattr(error.details, name), str)
    }
    error.details = error.details.model_copy(update=texts)
    return error
