"""Child runs: a `sub_workflow` step runs another workflow as a run of its own.

The child is an ordinary run linked by `parent_run_id` and `parent_step_id`, so its steps
are readable on their own. The parent's worker claims and drives it in-process (renewing
its lease), so a child costs no extra queue round trip. A resumed parent step finds its
child by `parent_step_id` instead of starting another: a finished child gives its result,
an unfinished one is continued, a failed or cancelled one is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from uuid import UUID

from stepline.nodes.base import ChildOutcome, NodeError
from stepline.records import (
    SETTLED_RUN_STATUSES,
    ErrorStage,
    RunRecord,
    RunStatus,
    StepRecord,
    WorkflowRecord,
)
from stepline.spec.inputs import validate_run_inputs
from stepline.spec.validate import WorkflowInvalid, load_workflow

if TYPE_CHECKING:
    from stepline.engine.executor import RunExecution

WAIT_POLL_S = 0.2
"""How often a child that another worker holds is looked at."""
CANCEL_POLL_S = 0.5
"""How often a child driven here looks for a cancel request of its own."""


class StepChildRuns:
    """The ChildRuns service of one step."""

    def __init__(self, execution: RunExecution, step: StepRecord) -> None:
        self.execution = execution
        self.step = step

    async def run(self, workflow: str, version: int | None, inputs: dict[str, Any]) -> ChildOutcome:
        store = self.execution.engine.store
        child = await store.runs.find_child(self.step.id)
        if child is None:
            child = await self._start(workflow, version, inputs)
        elif child.status in (RunStatus.failed, RunStatus.cancelled):
            child = await store.runs.retry(child.organization_id, child.id)
        await self._link(child.id)
        if child.status not in SETTLED_RUN_STATUSES:
            child = await self._drive(child)
        return ChildOutcome(child.id, str(child.status), child.output, child.error)

    async def _start(self, workflow: str, version: int | None, inputs: dict[str, Any]) -> RunRecord:
        parent = self.execution.run
        store = self.execution.engine.store
        found = await _find_workflow(self.execution, workflow)
        if found is None:
            raise NodeError(
                f"sub_workflow: no workflow {workflow!r} in this organization",
                stage=ErrorStage.input_collection,
            )
        pinned = version or found.latest_version
        stored = await store.workflows.version(found.id, pinned)
        if stored is None:
            raise NodeError(
                f"sub_workflow: workflow {found.name!r} has no version {pinned}",
                stage=ErrorStage.input_collection,
            )
        try:
            spec = load_workflow(stored.definition, self.execution.engine.registry)
        except WorkflowInvalid as exc:
            raise NodeError(f"sub_workflow: {exc}", stage=ErrorStage.input_collection) from exc
        issues = validate_run_inputs(spec.inputs, inputs)
        if issues:
            problems = "; ".join(str(issue) for issue in issues)
            raise NodeError(
                f"sub_workflow: the inputs do not fit {found.name!r}: {problems}",
                stage=ErrorStage.input_collection,
            )
        return await store.runs.create(
            RunRecord(
                workflow_id=found.id,
                workflow_version=pinned,
                organization_id=parent.organization_id,
                workspace_id=parent.workspace_id,
                user_id=parent.user_id,
                trigger="sub_workflow",
                # What the parent passes down is on the child's record: mask its secrets.
                inputs=self.execution.redactor.data(inputs),
                parent_run_id=parent.id,
                parent_step_id=self.step.id,
                concurrency_limit=spec.concurrency,
            )
        )

    async def _link(self, child_id: UUID) -> None:
        metadata = self.step.step_metadata or {}
        if metadata.get("child_run_id") != str(child_id):
            self.step.step_metadata = {**metadata, "child_run_id": str(child_id)}
            await self.execution.record(self.step)

    async def _drive(self, child: RunRecord) -> RunRecord:
        """Claim the child and drive it here; if another worker holds it, wait for it."""
        engine = self.execution.engine
        worker_id = self.execution.worker_id or f"child-of:{self.execution.run.id}"
        while True:
            claimed = await engine.store.runs.claim(worker_id, engine.lease_s, run_id=child.id)
            if claimed is not None:
                return await self._execute(claimed, worker_id)
            current = await engine.store.runs.get(child.id)
            if current is None:
                raise NodeError(f"sub_workflow: child run {child.id} disappeared")
            if current.status in SETTLED_RUN_STATUSES:
                return current
            await asyncio.sleep(WAIT_POLL_S)

    async def _execute(self, child: RunRecord, worker_id: str) -> RunRecord:
        engine = self.execution.engine
        cancel = asyncio.Event()
        task = asyncio.create_task(engine.execute(child, worker_id=worker_id, cancel=cancel))
        renew = asyncio.create_task(self._heartbeat(child.id, worker_id, task, cancel))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The parent step was stopped (cancel, timeout): the child stops with it, and
            # finishes its record as cancelled instead of being cut off mid-write.
            cancel.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
            raise
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew

    async def _heartbeat(
        self,
        run_id: UUID,
        worker_id: str,
        task: asyncio.Task[RunRecord],
        cancel: asyncio.Event,
    ) -> None:
        """Renew the child's lease, and stop it when a cancel of the child is requested.

        (A cancel of the parent reaches the child through the parent step's task.)
        """
        store = self.execution.engine.store
        lease_s = self.execution.engine.lease_s
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + lease_s / 3
        while not task.done():
            await asyncio.sleep(max(min(CANCEL_POLL_S, renew_at - loop.time()), 0))
            if not cancel.is_set() and await store.runs.cancel_requested_at(run_id):
                cancel.set()
            if loop.time() >= renew_at:
                renew_at = loop.time() + lease_s / 3
                await store.runs.renew_lease(run_id, worker_id, lease_s)


async def _find_workflow(execution: RunExecution, reference: str) -> WorkflowRecord | None:
    store = execution.engine.store
    organization_id = execution.run.organization_id
    try:
        as_id = UUID(reference)
    except ValueError:
        # Names are unique per workspace: the run's own workspace's workflow comes first.
        workspace_id = execution.run.workspace_id
        return await store.workflows.find(organization_id, reference, workspace_id=workspace_id)
    return await store.workflows.get(organization_id, as_id)
