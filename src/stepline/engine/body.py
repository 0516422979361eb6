"""A container's body, run one iteration at a time as a frame of its own.

Iteration `i` of loop step `L` records its steps as `L_iter_i_<node_id>` (nested loops
chain: `outer_iter_0_inner_iter_2_extract`), each with `loop_id` (the innermost loop's
node id), `iteration` and the whole container hierarchy; their order_key extends the loop
step's (`stepline.step_order`), so they are listed right after it, iteration by iteration.
Its steps are created pending when the iteration starts; on a resume they are found on
record, so a completed iteration is not executed again and an interrupted one continues
where it stopped.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stepline.engine.frame import Frame
from stepline.nodes.base import IterationOutcome
from stepline.records import IterationFrame, StepRecord
from stepline.spec.graph import WorkflowGraph
from stepline.spec.models import NodeSpec
from stepline.step_order import iteration_base

if TYPE_CHECKING:
    from stepline.engine.executor import RunExecution


def iteration_prefix(container_step_id: str, index: int) -> str:
    """The step_id prefix of one iteration's steps."""
    return f"{container_step_id}_iter_{index}_"


class LoopBody:
    """The BodyRunner the engine lends a container step."""

    def __init__(
        self,
        execution: RunExecution,
        parent: Frame,
        node: NodeSpec,
        step: StepRecord,
        graph: WorkflowGraph,
    ) -> None:
        self.execution = execution
        self.parent = parent
        self.node = node
        self.step = step
        self.graph = graph
        self._last_states: dict[str, dict[str, Any]] = {}

    async def run_iteration(self, index: int, loop: Mapping[str, Any]) -> IterationOutcome:
        prefix = iteration_prefix(self.step.step_id, index)
        frame_of_loop = IterationFrame(
            container_id=self.node.id, container_type=self.node.type, iteration=index
        )
        context = [*self.parent.context, frame_of_loop]
        await self.execution.ensure_steps(
            self.graph,
            prefix,
            context,
            loop_id=self.node.id,
            iteration=index,
            order_base=iteration_base(self.step.order_key, index),
        )
        states: dict[str, dict[str, Any]] = {}
        frame = Frame(
            self.execution,
            self.graph,
            prefix,
            context,
            self._scope(loop, states),
            states,
        )
        await frame.drive()
        self._last_states = states
        if frame.failures:
            failed = frame.failures[0]
            error = f"step '{failed.step_id}' failed: {failed.error}"
            return IterationOutcome(index, "error", error=error, failed_step_id=failed.step_id)
        if frame.waiting:
            return IterationOutcome(index, "waiting")
        body = self.node.body
        try:
            output = frame.result(body.output if body is not None else None)
        except Exception as exc:
            error = f"could not resolve the iteration's output: {exc}"
            return IterationOutcome(index, "error", error=error)
        return IterationOutcome(index, "completed", output=output)

    def evaluate(self, expression: str, loop: Mapping[str, Any]) -> Any:
        """Evaluate in the scope the next iteration would see, plus the last one's nodes."""
        scope = self._scope(loop, self._last_states)
        return self.execution.engine.templates.evaluate(expression, scope)

    def _scope(
        self, loop: Mapping[str, Any], states: dict[str, dict[str, Any]]
    ) -> Mapping[str, Any]:
        outer = self.parent.scope
        loop_scope = {**loop, "id": self.node.id, "parent": outer.get("loop")}
        return {**outer, "nodes": ChainMap(states, outer["nodes"]), "loop": loop_scope}
