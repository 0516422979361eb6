"""The `reshape` node kind: builds a new value out of earlier outputs with templates."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult


class ReshapeConfig(BaseModel):
    """The shape to produce."""

    model_config = ConfigDict(extra="forbid")

    output: Any = Field(
        description="The value to output: any JSON value whose strings are templates, e.g. "
        "{'name': '{{ nodes.fetch.output.body.name }}', 'n': '{{ inputs.items | length }}'}.",
    )


class ReshapeNode(NodeKind):
    """Outputs its rendered `output` mapping (or any other JSON value)."""

    type = "reshape"
    config_model = ReshapeConfig
    pure = True
    description = "Builds a new value from inputs and earlier outputs."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ReshapeConfig, ctx.config)
        return NodeResult(output=config.output)
