"""Drives one claimed run to its end: plans ready nodes, runs them concurrently, routes results.

Resuming is the same code path as starting: the steps already on record are loaded first,
a step that completed is never executed again (its output is the checkpoint), and a step
found `running` was interrupted and runs again with its retry count raised.

A run stops early on its timeout (it fails) or when its `cancel` event is set (the worker
sets it when a cancel is requested): the step tasks in flight are cancelled, which kills
their sandbox processes and HTTP calls, and every unfinished step is marked cancelled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stepline.engine.observer import NullObserver, RunObserver
from stepline.engine.routing import Decision, Ready, Router
from stepline.engine.step_runner import StepOutcome, StepRunner
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import NodeRegistry
from stepline.records import (
    FINISHED_STEP_STATUSES,
    ErrorDetails,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    utcnow,
)
from stepline.spec.graph import WorkflowGraph
from stepline.spec.models import WorkflowSpec
from stepline.spec.templates import TemplateError, Templates, get_templates
from stepline.spec.validate import WorkflowInvalid, load_workflow
from stepline.store import Store

RUN_CANCELLED = "run cancelled"
"""The status_reason of the steps a cancel stopped (as `Store.request_cancel` writes it)."""


@dataclass
class Engine:
    """Executes runs against a store with a registry of node kinds."""

    store: Store
    registry: NodeRegistry
    services: NodeServices = field(default_factory=NodeServices)
    observer: RunObserver = field(default_factory=NullObserver)
    templates: Templates = field(default_factory=get_templates)

    async def execute(
        self,
        run: RunRecord,
        *,
        worker_id: str | None = None,
        cancel: asyncio.Event | None = None,
    ) -> RunRecord:
        """Run (or resume) a run that this worker has claimed, and record how it ended.

        Setting `cancel` stops the run and finishes it `cancelled`; a run whose cancel was
        requested before this claim is cancelled without running anything.
        """
        cancel = cancel or asyncio.Event()
        if run.cancel_requested_at is not None:
            cancel.set()
        version = await self.store.get_version(run.workflow_id, run.workflow_version)
        if version is None:
            return await self._finish(
                run, worker_id, RunStatus.failed, error="the run's workflow version is missing"
            )
        try:
            spec = load_workflow(version.definition, self.registry)
        except WorkflowInvalid as exc:
            return await self._finish(
                run, worker_id, RunStatus.failed, error=f"the workflow is not valid: {exc}"
            )
        self.observer.run_changed(run)
        execution = _RunExecution(self, run, spec, cancel)
        status, output, error, details = await execution.execute()
        return await self._finish(
            run,
            worker_id,
            status,
            output=output,
            error=error,
            error_details=details,
            steps=execution.steps.values(),
        )

    async def _finish(
        self,
        run: RunRecord,
        worker_id: str | None,
        status: RunStatus,
        *,
        output: Any = None,
        error: str | None = None,
        error_details: ErrorDetails | None = None,
        steps: Any = (),
    ) -> RunRecord:
        tokens = [s.tokens.total for s in steps if s.tokens is not None]
        costs = [s.cost.total for s in steps if s.cost is not None]
        finished = await self.store.finish_run(
            run.id,
            worker_id,
            status=status,
            output=output,
            error=error,
            error_details=error_details,
            total_tokens=sum(tokens) if tokens else None,
            total_cost=sum(costs) if costs else None,
        )
        self.observer.run_changed(finished)
        return finished


class _RunExecution:
    """The state of one run while a worker drives it."""

    def __init__(
        self, engine: Engine, run: RunRecord, spec: WorkflowSpec, cancel: asyncio.Event
    ) -> None:
        self.engine = engine
        self.cancel = cancel
        self.run = run
        self.spec = spec
        self.graph = WorkflowGraph(spec)
        self.router = Router(self.graph)
        self.steps: dict[str, StepRecord] = {}
        self.node_states: dict[str, dict[str, Any]] = {}
        self.scope: Mapping[str, Any] = {
            "inputs": run.inputs,
            "nodes": self.node_states,
            "run": {
                "id": str(run.id),
                "workflow_id": str(run.workflow_id),
                "workflow_version": run.workflow_version,
            },
        }
        self.failures: list[StepRecord] = []
        self.runner = StepRunner(
            run_id=run.id,
            workflow_id=run.workflow_id,
            organization_id=run.organization_id,
            templates=engine.templates,
            services=engine.services,
            defaults=spec.defaults,
            record=self._record,
        )

    async def execute(self) -> tuple[RunStatus, Any, str | None, ErrorDetails | None]:
        await self._load_steps()
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                cancelled = await self._drive_unless_cancelled()
        except TimeoutError:
            reason = f"the run timed out after {self.spec.timeout_s:g} s"
            await self._cancel_unfinished(reason)
            return RunStatus.failed, None, reason, ErrorDetails(type="TimeoutError", message=reason)
        if cancelled:
            await self._cancel_unfinished(RUN_CANCELLED)
            return RunStatus.cancelled, None, None, None
        if self.failures:
            first = self.failures[0]
            error = f"step '{first.step_id}' failed: {first.error}"
            details = (first.error_details or ErrorDetails()).model_copy(
                update={"context": {"node_id": first.node_id, "step_id": first.step_id}}
            )
            return RunStatus.failed, None, error, details
        try:
            return RunStatus.completed, self._run_output(), None, None
        except TemplateError as exc:
            error = f"could not resolve the workflow output: {exc.message}"
            return RunStatus.failed, None, error, ErrorDetails(type="TemplateError", message=error)

    async def _load_steps(self) -> None:
        """Load the steps on record (a resume) and create the missing ones as pending."""
        for step in await self.engine.store.list_steps(self.run.id):
            self.steps[step.step_id] = step
        next_seq = max((s.seq for s in self.steps.values()), default=-1) + 1
        created: list[StepRecord] = []
        for node_id in self.graph.topological_order():
            if node_id in self.steps:
                continue
            node = self.graph.nodes[node_id]
            step = StepRecord(
                run_id=self.run.id,
                workflow_id=self.run.workflow_id,
                workflow_version=self.run.workflow_version,
                organization_id=self.run.organization_id,
                user_id=self.run.user_id,
                node_id=node_id,
                step_id=node_id,
                node_type=node.type,
                node_label=node.display_label,
                seq=next_seq,
            )
            next_seq += 1
            self.steps[node_id] = step
            created.append(step)
        if created:
            await self.engine.store.insert_steps(created)
            for step in created:
                self.engine.observer.step_changed(step)

    async def _drive_unless_cancelled(self) -> bool:
        """Drive the run to its end, or until `cancel` is set (then return True)."""
        if self.cancel.is_set():
            return True
        drive = asyncio.create_task(self._drive())
        cancelled = asyncio.create_task(self.cancel.wait())
        try:
            await asyncio.wait({drive, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also on a timeout or when this task is cancelled: no step outlives the drive.
            cancelled.cancel()
            if not drive.done():
                drive.cancel()
                await asyncio.gather(drive, return_exceptions=True)
        if drive.cancelled():
            return True
        drive.result()  # a bug in the drive surfaces here
        return False

    async def _drive(self) -> None:
        queue: deque[Ready] = deque(self.router.roots())
        tasks: set[asyncio.Task[StepOutcome]] = set()
        try:
            while queue or tasks:
                while queue:
                    ready = queue.popleft()
                    step = self.steps[ready.node_id]
                    if ready.decision is Decision.run and step.status not in FINISHED_STEP_STATUSES:
                        tasks.add(asyncio.create_task(self._run_node(ready.node_id)))
                    elif ready.decision is Decision.run:
                        queue.extend(self._route(self._outcome_on_record(step)))
                    else:
                        queue.extend(await self._skip(ready))
                if tasks:
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        queue.extend(self._route(task.result()))
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_node(self, node_id: str) -> StepOutcome:
        node = self.graph.nodes[node_id]
        kind = self.engine.registry[node.type]
        return await self.runner.run(node, kind, self.steps[node_id], self.scope)

    def _outcome_on_record(self, step: StepRecord) -> StepOutcome:
        """A step finished by an earlier worker: its record is the checkpoint."""
        handle = (step.step_metadata or {}).get("active_handle")
        return StepOutcome(step.node_id, step.status, handle)

    def _route(self, outcome: StepOutcome) -> list[Ready]:
        step = self.steps[outcome.node_id]
        node = self.graph.nodes[outcome.node_id]
        self.node_states[outcome.node_id] = {
            "output": step.outputs,
            "status": str(step.status),
            "error": step.error,
        }
        if outcome.status is StepStatus.completed:
            return self.router.completed(outcome.node_id, outcome.handle)
        if outcome.status is StepStatus.error and node.on_error == "continue":
            return self.router.completed(outcome.node_id, None)
        if outcome.status is StepStatus.skipped:
            return self.router.skipped(outcome.node_id)
        self.failures.append(step)
        return self.router.failed(outcome.node_id)

    async def _skip(self, ready: Ready) -> list[Ready]:
        step = self.steps[ready.node_id]
        if step.status is not StepStatus.skipped:
            step.status = StepStatus.skipped
            step.status_reason = ready.reason
            await self._record(step)
        self.node_states[ready.node_id] = {"output": None, "status": "skipped", "error": None}
        if ready.decision is Decision.skip_upstream_failed:
            return self.router.failed(ready.node_id, ready.failed_origin)
        return self.router.skipped(ready.node_id)

    async def _cancel_unfinished(self, reason: str) -> None:
        """Mark every unfinished step cancelled (and its attempt in flight), in one batch."""
        now = utcnow()
        unfinished = [s for s in self.steps.values() if s.status not in FINISHED_STEP_STATUSES]
        for step in unfinished:
            step.status = StepStatus.cancelled
            step.status_reason = reason
            step.completed_at = now if step.started_at else None
            if step.started_at is not None:
                step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
            if step.attempts and step.attempts[-1].status is StepStatus.running:
                step.attempts[-1].status = StepStatus.cancelled
                step.attempts[-1].completed_at = now
        # Concurrent records share the writer's group commits.
        await asyncio.gather(*(self._record(step) for step in unfinished))

    def _run_output(self) -> Any:
        """The run's result: the `output` template, else the end nodes' (or sinks') outputs."""
        if self.spec.output is not None:
            return self.engine.templates.render(self.spec.output, self.scope, path="$.output")
        ends = [n.id for n in self.spec.nodes if n.type == "end"]
        if not ends:
            ends = [nid for nid in self.graph.nodes if not self.graph.outbound(nid)]
        done = [nid for nid in ends if self.steps[nid].status is StepStatus.completed]
        if len(ends) == 1:
            return self.steps[ends[0]].outputs if done else None
        return {nid: self.steps[nid].outputs for nid in done}

    async def _record(self, step: StepRecord) -> None:
        step.updated_at = utcnow()
        await self.engine.store.update_step(step)
        self.engine.observer.step_changed(step)
