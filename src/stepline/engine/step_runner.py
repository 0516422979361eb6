"""Runs one step of one node: resolve its inputs, run its kind, retry, and record each change.

Every transition is committed before the engine moves on (pending -> running with the
resolved inputs -> completed or error), so a reader sees the step as it is, and a worker
that dies leaves a record another worker can resume from. The one exception is a pure
kind's `running` (`NodeKind.pure`): it is held (`defer`) and committed with the step's
next write, its event included, since running such a step again is harmless.

A step under review stops at `waiting_for_human` with its proposed output; when the run
resumes after the decision, the same call applies it: approved completes the step (with
the reviewer's edited output if one was sent), rejected takes the `rejected` handle if an
edge follows it, otherwise fails the step.

What a step records is held to the engine's document limits before it is recorded: its
resolved inputs (else it fails at `input_collection`) and what its kind returned (else at
`output_storage`), so that nothing stored can break a later read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from stepline.documents import DocumentError, DocumentLimits, check_output
from stepline.engine.failures import RunNotExecutable, storable_error
from stepline.engine.retry import NO_RETRY, retry_delay_s, should_retry
from stepline.files import FileAccess
from stepline.nodes.base import (
    BodyRunner,
    ChildRuns,
    NodeContext,
    NodeError,
    NodeKind,
    NodePaused,
    NodeResult,
    NodeServices,
)
from stepline.records import (
    Attempt,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    StepRecord,
    StepStatus,
    utcnow,
)
from stepline.retrieval.access import KnowledgeAccess
from stepline.spec.models import REJECTED_HANDLE, NodeDefaults, NodeSpec
from stepline.spec.templates import TemplateError, Templates

INTERRUPTED = "interrupted: the worker running this step stopped before it finished"

Record = Callable[[StepRecord], Awaitable[None]]
Defer = Callable[[StepRecord], None]


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended, for routing the graph."""

    node_id: str
    status: StepStatus
    handle: str | None = None
    exclusive: bool = False
    """Only the edges on `handle` are active, not the default ones (a rejected review)."""


@dataclass
class StepRunner:
    """Runs steps for one run; shared by every node of the run."""

    run_id: UUID
    workflow_id: UUID
    organization_id: UUID
    templates: Templates
    services: NodeServices
    defaults: NodeDefaults | None
    record: Record
    limits: DocumentLimits = field(default_factory=DocumentLimits)
    files: FileAccess | None = None
    """The run's organization's files, lent to every step."""
    knowledge: KnowledgeAccess | None = None
    """The run's organization's knowledge collections, lent to every step."""
    worker_id: str | None = None
    """The worker driving the run: each attempt records it as `step_metadata.worker`."""
    defer: Defer | None = None
    """Holds a pure step's `running` for its next write (None: every write commits)."""

    async def run(
        self,
        node: NodeSpec,
        kind: NodeKind,
        step: StepRecord,
        scope: Mapping[str, Any],
        *,
        body: BodyRunner | None = None,
        children: ChildRuns | None = None,
        rejected_wired: bool = False,
    ) -> StepOutcome:
        if step.status is StepStatus.waiting_for_human and step.requires_human_review:
            if step.human_review_approved is None:
                return StepOutcome(step.node_id, StepStatus.waiting_for_human)
            return await self._apply_review(step, rejected_wired)
        # A paused container (or sub_workflow) continues its attempt: a pause is no retry.
        paused = step.status is StepStatus.waiting_for_human and bool(step.attempts)
        if step.status is StepStatus.running:
            _mark_interrupted(step)
        policy = node.retry or (self.defaults.retry if self.defaults else None) or NO_RETRY
        timeout_s = node.timeout_s or (self.defaults.timeout_s if self.defaults else None)
        tries = 1  # within this execution: what the retry policy counts
        while True:
            started = utcnow()
            try:
                inputs, config = self._resolve(node, kind, scope)
                recorded_inputs = self._recordable_inputs(node, kind, inputs, scope)
            except NodeError as exc:
                step.started_at = step.started_at or started
                return await self._fail(node, step, exc)
            step.status = StepStatus.running
            step.status_reason = None
            step.started_at = step.started_at or started
            step.inputs = recorded_inputs
            if self.worker_id is not None:
                step.step_metadata = {**(step.step_metadata or {}), "worker": self.worker_id}
            if paused:
                attempt = step.attempts[-1]
                attempt.status = StepStatus.running
                paused = False
            else:
                attempt = Attempt(
                    number=len(step.attempts) + 1, started_at=started, status=StepStatus.running
                )
                step.attempts.append(attempt)
            step.retry_count = max(step.retry_count, len(step.attempts) - 1)
            if kind.pure and self.defer is not None:
                self.defer(step)
            else:
                await self.record(step)
            attempt_no = attempt.number

            ctx = NodeContext(
                run_id=self.run_id,
                workflow_id=self.workflow_id,
                organization_id=self.organization_id,
                node=node,
                step_id=step.step_id,
                attempt=attempt_no,
                inputs=inputs,
                config=config,
                timeout_s=timeout_s,
                evaluate=lambda expression: self.templates.evaluate(expression, scope),
                scope=scope,
                services=self.services,
                body=body,
                children=children,
                files=self.files,
                knowledge=self.knowledge,
            )
            try:
                result = await _run_with_timeout(kind, ctx, timeout_s)
                self._check_result(node, result)
                wants_review = self._wants_review(node, kind, scope, result)
            except NodePaused as exc:
                return await self._pause(step, attempt, str(exc))
            except NodeError as exc:
                error = exc
            except RunNotExecutable:
                raise  # a step inside a loop's body: the run fails, not only the loop
            except Exception as exc:  # a node kind's bug still belongs on the record
                error = NodeError.from_exception(exc)
            else:
                if wants_review:
                    return await self._await_review(step, attempt, result)
                return await self._complete(step, attempt, result)

            error = storable_error(error)
            attempt.completed_at = utcnow()
            attempt.status = StepStatus.error
            attempt.error = error.message
            attempt.error_category = error.category
            if not should_retry(policy, tries, error.category):
                return await self._fail(node, step, error)
            step.retry_count += 1
            step.error = error.message
            await self.record(step)
            await asyncio.sleep(retry_delay_s(policy, tries, retry_after_s=error.retry_after_s))
            tries += 1

    def _recordable_inputs(
        self, node: NodeSpec, kind: NodeKind, inputs: dict[str, Any], scope: Mapping[str, Any]
    ) -> Any:
        """The inputs to record, if they are a document within the limits (else NodeError);
        with the run's id and data for kinds that record them (Arcee's steps show them)."""
        recorded = kind.recorded_inputs(inputs)
        if kind.records_run_context:
            recorded = {**recorded, "run_id": str(self.run_id), "input_data": _input_data(scope)}
        try:
            check_output(recorded, self.limits, path="inputs")
        except DocumentError as exc:
            raise NodeError(
                f"the resolved inputs of '{node.id}' cannot be recorded: {exc}",
                stage=ErrorStage.input_collection,
                details=ErrorDetails(
                    type="DocumentError", message=str(exc), context={"path": exc.path}
                ),
            ) from exc
        return recorded

    def _check_result(self, node: NodeSpec, result: NodeResult) -> None:
        """NodeError unless what the kind returned is storable: documents within the limits."""
        parts = {
            "output": result.output,
            "handle_inputs": result.handle_inputs,
            "handle_outputs": result.handle_outputs,
            "input_document": result.input_document,
            "output_document": result.output_document,
            "split_documents": result.split_documents,
            "step_metadata": result.metadata,
            "trace_spans": result.trace_spans,
        }
        try:
            for name, value in parts.items():
                if value is not None:
                    check_output(value, self.limits, path=name)
        except DocumentError as exc:
            raise NodeError(
                f"the output of '{node.id}' cannot be stored: {exc}",
                stage=ErrorStage.output_storage,
                details=ErrorDetails(
                    type="DocumentError", message=str(exc), context={"path": exc.path}
                ),
            ) from exc

    def _wants_review(
        self, node: NodeSpec, kind: NodeKind, scope: Mapping[str, Any], result: NodeResult
    ) -> bool:
        """Whether a person must approve this result: `hil` always, else the node's `review`."""
        if kind.always_review:
            return True
        if node.review is None:
            return False
        if node.review.when.strip() == "always":
            return True
        try:
            return bool(
                self.templates.evaluate(
                    node.review.when, {**scope, "output": result.output}, path="$.review.when"
                )
            )
        except TemplateError as exc:
            raise NodeError(
                f"the review condition of '{node.id}' failed: {exc.message}",
                stage=ErrorStage.routing,
                details=ErrorDetails(type="TemplateError", message=exc.message),
            ) from exc

    def _settle(self, step: StepRecord, attempt: Attempt, result: NodeResult) -> None:
        """The try succeeded: its result on the step (final, or proposed for review)."""
        now = utcnow()
        attempt.completed_at = now
        attempt.status = StepStatus.completed
        step.outputs = result.output
        step.error = None
        step.handle_inputs = result.handle_inputs
        step.handle_outputs = result.handle_outputs
        step.input_document = result.input_document
        step.output_document = result.output_document
        step.split_documents = result.split_documents
        step.model = result.model
        step.tokens = result.tokens
        step.cost = result.cost
        step.trace_spans = result.trace_spans
        metadata = {**(step.step_metadata or {}), **(result.metadata or {})}
        if result.handle is not None:
            metadata["active_handle"] = result.handle
        step.step_metadata = metadata or None

    async def _await_review(
        self, step: StepRecord, attempt: Attempt, result: NodeResult
    ) -> StepOutcome:
        self._settle(step, attempt, result)
        step.status = StepStatus.waiting_for_human
        step.status_reason = "waiting for a person to review the output"
        step.requires_human_review = True
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.waiting_for_human)

    async def _pause(self, step: StepRecord, attempt: Attempt, reason: str) -> StepOutcome:
        step.status = StepStatus.waiting_for_human
        step.status_reason = reason
        attempt.status = StepStatus.waiting_for_human
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.waiting_for_human)

    async def _apply_review(self, step: StepRecord, rejected_wired: bool) -> StepOutcome:
        """The reviewer decided (the store recorded it): finish the step accordingly."""
        metadata = dict(step.step_metadata or {})
        review = metadata.get("review") or {}
        step.completed_at = utcnow()
        step.duration_ms = _duration_ms(step)
        step.status_reason = None
        if step.human_review_approved:
            if "output" in review:
                step.outputs = review["output"]
            step.status = StepStatus.completed
            await self.record(step)
            return StepOutcome(step.node_id, StepStatus.completed, metadata.get("active_handle"))
        if rejected_wired:
            metadata["active_handle"] = REJECTED_HANDLE
            metadata["exclusive_handle"] = True
            step.step_metadata = metadata
            step.status = StepStatus.completed
            step.status_reason = "rejected by the reviewer; took the 'rejected' handle"
            await self.record(step)
            return StepOutcome(step.node_id, StepStatus.completed, REJECTED_HANDLE, exclusive=True)
        who = step.human_reviewer or "the reviewer"
        comment = review.get("comment")
        message = f"rejected by {who}" + (f": {comment}" if comment else "")
        step.status = StepStatus.error
        step.error = message
        step.error_stage = ErrorStage.execution
        step.error_category = ErrorCategory.permanent
        step.error_details = ErrorDetails(type="ReviewRejected", message=message)
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.error)

    def _resolve(
        self, node: NodeSpec, kind: NodeKind, scope: Mapping[str, Any]
    ) -> tuple[dict[str, Any], BaseModel]:
        """The node's config with its templates resolved, and that validated by its kind."""
        raw = kind.raw_fields
        inputs: dict[str, Any] = {}
        try:
            for key, value in node.config.items():
                inputs[key] = (
                    value
                    if key in raw
                    else self.templates.render(value, scope, path=f"$.config.{key}")
                )
        except TemplateError as exc:
            raise NodeError(
                f"could not resolve the inputs of '{node.id}': {exc.message}",
                stage=ErrorStage.input_collection,
                details=ErrorDetails(
                    type="TemplateError", message=exc.message, context={"path": exc.path}
                ),
            ) from exc
        try:
            config = kind.config_model.model_validate(inputs)
        except ValidationError as exc:
            problems = "; ".join(
                f"$.config.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise NodeError(
                f"the resolved inputs of '{node.id}' are invalid: {problems}",
                stage=ErrorStage.input_collection,
                details=ErrorDetails(type="ValidationError", message=problems),
            ) from exc
        return inputs, config

    async def _complete(
        self, step: StepRecord, attempt: Attempt, result: NodeResult
    ) -> StepOutcome:
        self._settle(step, attempt, result)
        step.status = StepStatus.completed
        step.completed_at = attempt.completed_at
        step.duration_ms = _duration_ms(step)
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.completed, result.handle)

    async def _fail(self, node: NodeSpec, step: StepRecord, error: NodeError) -> StepOutcome:
        error = storable_error(error)
        step.status = StepStatus.error
        step.completed_at = utcnow()
        step.duration_ms = _duration_ms(step)
        step.error = error.message
        step.error_stage = error.stage
        step.error_category = error.category
        step.error_details = error.details
        if error.tokens is not None or error.cost is not None or error.trace_spans is not None:
            step.model = error.model
            step.tokens = error.tokens
            step.cost = error.cost
            step.trace_spans = error.trace_spans
        if error.metadata:
            step.step_metadata = {**(step.step_metadata or {}), **error.metadata}
        if error.handle_inputs is not None:
            step.handle_inputs = error.handle_inputs
            step.input_document = error.input_document
        if node.on_error == "continue":
            step.status_reason = "failed; the workflow continues (on_error: continue)"
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.error)


async def _run_with_timeout(
    kind: NodeKind, ctx: NodeContext, timeout_s: float | None
) -> NodeResult:
    if timeout_s is None:
        return await kind.run(ctx)
    try:
        async with asyncio.timeout(timeout_s):
            return await kind.run(ctx)
    except TimeoutError as exc:
        raise NodeError(
            f"timed out after {timeout_s:g} s",
            category=ErrorCategory.transient,
            details=ErrorDetails(type="TimeoutError", message=f"timed out after {timeout_s:g} s"),
        ) from exc


def _input_data(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs and each completed node's output by node id (Arcee's `input_data`)."""
    run_inputs = scope.get("inputs")
    data: dict[str, Any] = dict(run_inputs) if isinstance(run_inputs, Mapping) else {}
    for node_id, state in (scope.get("nodes") or {}).items():
        if isinstance(state, Mapping) and state.get("status") == StepStatus.completed:
            data[node_id] = state.get("output")
    return data


def _mark_interrupted(step: StepRecord) -> None:
    """A step found `running` on resume was cut off by a dead worker: count it as a retry."""
    if step.attempts and step.attempts[-1].status is StepStatus.running:
        last = step.attempts[-1]
        last.status = StepStatus.error
        last.error = INTERRUPTED
        last.error_category = ErrorCategory.transient
    step.retry_count += 1


def _duration_ms(step: StepRecord) -> int | None:
    if step.started_at is None or step.completed_at is None:
        return None
    return int((step.completed_at - step.started_at).total_seconds() * 1000)
