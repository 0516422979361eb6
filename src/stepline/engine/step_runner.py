"""Runs one step of one node: resolve its inputs, run its kind, retry, and record each change.

Every transition is committed before the engine moves on (pending -> running with the
resolved inputs -> completed or error), so a reader sees the step as it is, and a worker
that dies leaves a record another worker can resume from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from stepline.engine.retry import NO_RETRY, retry_delay_s, should_retry
from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult, NodeServices
from stepline.records import (
    Attempt,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    StepRecord,
    StepStatus,
    utcnow,
)
from stepline.spec.models import NodeDefaults, NodeSpec
from stepline.spec.templates import TemplateError, Templates

INTERRUPTED = "interrupted: the worker running this step stopped before it finished"

Record = Callable[[StepRecord], Awaitable[None]]


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended, for routing the graph."""

    node_id: str
    status: StepStatus
    handle: str | None = None


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

    async def run(
        self, node: NodeSpec, kind: NodeKind, step: StepRecord, scope: Mapping[str, Any]
    ) -> StepOutcome:
        if step.status is StepStatus.running:
            _mark_interrupted(step)
        policy = node.retry or (self.defaults.retry if self.defaults else None) or NO_RETRY
        timeout_s = node.timeout_s or (self.defaults.timeout_s if self.defaults else None)
        attempt_no = len(step.attempts) + 1
        while True:
            started = utcnow()
            try:
                inputs, config = self._resolve(node, kind, scope)
            except NodeError as exc:
                step.started_at = step.started_at or started
                return await self._fail(node, step, exc)
            step.status = StepStatus.running
            step.started_at = step.started_at or started
            step.inputs = inputs
            attempt = Attempt(number=attempt_no, started_at=started, status=StepStatus.running)
            step.attempts.append(attempt)
            await self.record(step)

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
            )
            try:
                result = await _run_with_timeout(kind, ctx, timeout_s)
            except NodeError as exc:
                error = exc
            except Exception as exc:  # a node kind's bug still belongs on the record
                error = NodeError.from_exception(exc)
            else:
                return await self._complete(step, attempt, result)

            attempt.completed_at = utcnow()
            attempt.status = StepStatus.error
            attempt.error = error.message
            attempt.error_category = error.category
            if not should_retry(policy, attempt_no, error.category):
                return await self._fail(node, step, error)
            step.retry_count += 1
            step.error = error.message
            await self.record(step)
            await asyncio.sleep(
                retry_delay_s(policy, attempt_no, retry_after_s=error.retry_after_s)
            )
            attempt_no += 1

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
        now = utcnow()
        attempt.completed_at = now
        attempt.status = StepStatus.completed
        step.status = StepStatus.completed
        step.completed_at = now
        step.duration_ms = _duration_ms(step)
        step.outputs = result.output
        step.error = None
        step.handle_inputs = result.handle_inputs
        step.handle_outputs = result.handle_outputs
        step.model = result.model
        step.tokens = result.tokens
        step.cost = result.cost
        step.trace_spans = result.trace_spans
        metadata = dict(result.metadata or {})
        if result.handle is not None:
            metadata["active_handle"] = result.handle
        step.step_metadata = metadata or None
        await self.record(step)
        return StepOutcome(step.node_id, StepStatus.completed, result.handle)

    async def _fail(self, node: NodeSpec, step: StepRecord, error: NodeError) -> StepOutcome:
        step.status = StepStatus.error
        step.completed_at = utcnow()
        step.duration_ms = _duration_ms(step)
        step.error = error.message
        step.error_stage = error.stage
        step.error_category = error.category
        step.error_details = error.details
        if error.metadata:
            step.step_metadata = {**(step.step_metadata or {}), **error.metadata}
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
