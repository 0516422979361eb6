"""One graph being driven: the workflow itself, or one iteration of a loop body.

A frame plans its nodes as their inbound edges resolve, runs the ready ones concurrently,
and routes each result. Its steps live in the run's shared step table under
`prefix + node_id` (`""` at the top, `loop_iter_0_` in an iteration), so a resumed run
finds every checkpoint by the same step_id. A frame ends when nothing more can run: what
failed is in `failures`, what waits for a person in `waiting`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stepline.engine.children import StepChildRuns
from stepline.engine.routing import Decision, Ready, Router
from stepline.engine.step_runner import StepOutcome
from stepline.nodes.base import BodyRunner
from stepline.records import FINISHED_STEP_STATUSES, IterationFrame, StepRecord, StepStatus
from stepline.spec.graph import WorkflowGraph
from stepline.spec.models import REJECTED_HANDLE

if TYPE_CHECKING:
    from stepline.engine.executor import RunExecution


@dataclass
class Frame:
    """The state of one graph while it is driven."""

    execution: RunExecution
    graph: WorkflowGraph
    prefix: str
    context: list[IterationFrame]
    """The enclosing loops and their iterations, outermost first (empty at the top)."""
    scope: Mapping[str, Any]
    node_states: MutableMapping[str, dict[str, Any]]
    """This frame's own nodes' states; `scope["nodes"]` reads these first."""
    failures: list[StepRecord] = field(default_factory=list)
    waiting: list[StepRecord] = field(default_factory=list)

    def step(self, node_id: str) -> StepRecord:
        return self.execution.steps[self.prefix + node_id]

    async def drive(self) -> None:
        router = Router(self.graph)
        queue: deque[Ready] = deque(router.roots())
        tasks: set[asyncio.Task[StepOutcome]] = set()
        try:
            while queue or tasks:
                while queue:
                    ready = queue.popleft()
                    step = self.step(ready.node_id)
                    if ready.decision is Decision.run and step.status not in FINISHED_STEP_STATUSES:
                        if not queue and not tasks:
                            # Alone: nothing else can become ready while it runs, so it
                            # runs in place (a task would only add turns of the loop).
                            queue.extend(self._route(router, await self._run_node(ready.node_id)))
                        else:
                            tasks.add(asyncio.create_task(self._run_node(ready.node_id)))
                    elif ready.decision is Decision.run:
                        queue.extend(self._route(router, _outcome_on_record(step)))
                    else:
                        queue.extend(await self._skip(router, ready))
                if tasks:
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        queue.extend(self._route(router, task.result()))
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_node(self, node_id: str) -> StepOutcome:
        node = self.graph.nodes[node_id]
        kind = self.execution.engine.registry[node.type]
        step = self.step(node_id)
        body: BodyRunner | None = None
        if kind.container and node.body is not None:
            body = self.execution.body_runner(self, node, step)
        rejected_wired = any(e.handle == REJECTED_HANDLE for e in self.graph.outbound(node_id))
        return await self.execution.runner.run(
            node,
            kind,
            step,
            self.scope,
            body=body,
            children=StepChildRuns(self.execution, step),
            rejected_wired=rejected_wired,
        )

    def _route(self, router: Router, outcome: StepOutcome) -> list[Ready]:
        step = self.step(outcome.node_id)
        node = self.graph.nodes[outcome.node_id]
        self.node_states[outcome.node_id] = {
            "output": step.outputs,
            "status": str(step.status),
            "error": step.error,
        }
        if outcome.status is StepStatus.completed:
            return router.completed(outcome.node_id, outcome.handle, exclusive=outcome.exclusive)
        if outcome.status is StepStatus.waiting_for_human:
            self.waiting.append(step)  # its edges stay unresolved: downstream waits too
            return []
        if outcome.status is StepStatus.error and node.on_error == "continue":
            return router.completed(outcome.node_id, None)
        if outcome.status is StepStatus.skipped:
            return router.skipped(outcome.node_id)
        self.failures.append(step)
        return router.failed(outcome.node_id)

    async def _skip(self, router: Router, ready: Ready) -> list[Ready]:
        step = self.step(ready.node_id)
        if step.status is not StepStatus.skipped:
            step.status = StepStatus.skipped
            step.status_reason = ready.reason
            await self.execution.record(step)
        self.node_states[ready.node_id] = {"output": None, "status": "skipped", "error": None}
        if ready.decision is Decision.skip_upstream_failed:
            return router.failed(ready.node_id, ready.failed_origin)
        return router.skipped(ready.node_id)

    def result(self, template: Any) -> Any:
        """The frame's result: `template` rendered, else its end nodes' (or sinks') outputs."""
        if template is not None:
            return self.execution.engine.templates.render(template, self.scope, path="$.output")
        ends = [nid for nid, n in self.graph.nodes.items() if n.type == "end"]
        if not ends:
            ends = [nid for nid in self.graph.nodes if not self.graph.outbound(nid)]
        done = [nid for nid in ends if self.step(nid).status is StepStatus.completed]
        if len(ends) == 1:
            return self.step(ends[0]).outputs if done else None
        return {nid: self.step(nid).outputs for nid in done}


def _outcome_on_record(step: StepRecord) -> StepOutcome:
    """A step finished earlier (another worker, or copied by a replay): the checkpoint."""
    metadata = step.step_metadata or {}
    return StepOutcome(
        step.node_id,
        step.status,
        metadata.get("active_handle"),
        exclusive=bool(metadata.get("exclusive_handle")),
    )
