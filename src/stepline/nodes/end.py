"""The `end` node kind: where a branch of the graph finishes, selecting the run's output."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult


class EndConfig(BaseModel):
    """What the run returns when it finishes here."""

    model_config = ConfigDict(extra="forbid")

    output: Any = Field(
        default=None,
        description="The run's output: any JSON value whose strings are templates, e.g. "
        "'{{ nodes.summarize.output }}' or {'total': '{{ nodes.sum.output }}'}.",
    )


class EndNode(NodeKind):
    """Outputs its rendered `output`, which becomes the run's result."""

    type = "end"
    config_model = EndConfig
    pure = True
    description = "Where a run finishes; its output is the run's result."
    outbound = "none"

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(EndConfig, ctx.config)
        return NodeResult(output=config.output)
