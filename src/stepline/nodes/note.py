"""The `note` node kind: a comment on the canvas that does nothing, yet is on the record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult


class NoteConfig(BaseModel):
    """The note's text, kept as written."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        default="", description="Free text for readers of the workflow; never rendered."
    )


class NoteNode(NodeKind):
    """Does nothing; its step is recorded so the run's history shows the note was passed."""

    type = "note"
    config_model = NoteConfig
    pure = True
    description = "A comment in the workflow; it does nothing and outputs null."
    # Why raw: a note may quote template syntax ("use {{ inputs.x }}") without it being rendered.
    raw_fields = frozenset({"text"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=None)
