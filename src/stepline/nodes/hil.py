"""The `hil` node kind: a person approves (optionally editing) or rejects a value."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult


class HilConfig(BaseModel):
    """What the reviewer sees."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(
        default=None,
        description="The value to review (templates resolved); the step's output once approved, "
        "unless the reviewer sends an edited output.",
    )
    instructions: str | None = Field(default=None, description="What the reviewer should check.")


class HilNode(NodeKind):
    """Proposes `payload` and waits: the run pauses until someone decides."""

    type = "hil"
    config_model = HilConfig
    description = "Waits for a person to approve, edit or reject a value."
    always_review = True

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(HilConfig, ctx.config)
        metadata = {"instructions": config.instructions} if config.instructions else None
        return NodeResult(output=config.payload, metadata=metadata)
