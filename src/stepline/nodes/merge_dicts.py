"""The `merge_dicts` node kind: combines several objects (e.g. branch outputs) into one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.records import ErrorCategory, ErrorStage


class MergeDictsConfig(BaseModel):
    """Which objects to merge, and how."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(
        description="The objects to merge, in order; usually templates such as "
        "'{{ nodes.a.output }}'. Each must be an object (or null) once rendered.",
    )
    strategy: Literal["shallow", "deep"] = Field(
        default="deep",
        description="deep: nested objects are merged key by key; shallow: a later top-level "
        "key replaces an earlier one whole. Either way, later inputs win.",
    )
    skip_none: bool = Field(
        default=True,
        description="Ignore null inputs (e.g. the output of a skipped node) instead of failing.",
    )


def merge_shallow(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` whose top-level keys are replaced by those of `update`."""
    return {**base, **update}


def merge_deep(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `update` merged in recursively; non-object values of `update` win."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_deep(current, value)
        else:
            merged[key] = value
    return merged


class MergeDictsNode(NodeKind):
    """Outputs the merge of its `inputs`, later ones winning."""

    type = "merge_dicts"
    config_model = MergeDictsConfig
    pure = True
    description = "Merges several objects into one; later inputs win."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(MergeDictsConfig, ctx.config)
        merged: dict[str, Any] = {}
        for index, entry in enumerate(config.inputs):
            if entry is None and config.skip_none:
                continue
            if not isinstance(entry, Mapping):
                raise NodeError(
                    f"merge_dicts input {index} is {_json_type(entry)}, not an object",
                    stage=ErrorStage.input_collection,
                    category=ErrorCategory.permanent,
                )
            if config.strategy == "deep":
                merged = merge_deep(merged, entry)
            else:
                merged = merge_shallow(merged, entry)
        return NodeResult(output=merged)


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as a workflow author would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"
