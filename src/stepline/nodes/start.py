"""The `start` node kind: where a run begins, handing the run's inputs to the graph."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from stepline.nodes.base import NodeContext, NodeKind, NodeResult


class StartConfig(BaseModel):
    """A start node takes no settings: the workflow's `inputs` schema declares the inputs."""

    model_config = ConfigDict(extra="forbid")


class StartNode(NodeKind):
    """Outputs the run's inputs, so that downstream nodes may read them as a node's output."""

    type = "start"
    config_model = StartConfig
    pure = True
    description = "Where a run begins; its output is the run's inputs."
    inbound = "none"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.scope.get("inputs", {})
        # A copy, so that a downstream node cannot change what the run was given.
        return NodeResult(output=dict(inputs) if isinstance(inputs, Mapping) else inputs)
