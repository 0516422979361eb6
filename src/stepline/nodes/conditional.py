"""The `conditional` node kind: routes the run down the first branch whose condition holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage
from stepline.spec.models import NODE_ID_PATTERN

ELSE_HANDLE = "else"


class Branch(BaseModel):
    """One named way out of a conditional, taken when its expression is truthy."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NODE_ID_PATTERN,
        description="The output handle edges follow when this branch is taken; unique, and "
        "not 'else' (the handle taken when no branch holds).",
    )
    when: str = Field(
        min_length=1,
        description='A Jinja expression without braces, e.g. "inputs.score > 0.8"; it sees '
        "the same names as templates (inputs, nodes...).",
    )

    @field_validator("name")
    @classmethod
    def _not_else(cls, name: str) -> str:
        if name == ELSE_HANDLE:
            raise ValueError("'else' is reserved for the handle taken when no branch holds")
        return name


class ConditionalConfig(BaseModel):
    """The branches, tried in order."""

    model_config = ConfigDict(extra="forbid")

    branches: list[Branch] = Field(
        min_length=1,
        description="Tried in order; the first whose `when` is truthy is taken, else 'else'.",
    )

    @field_validator("branches")
    @classmethod
    def _unique_names(cls, branches: list[Branch]) -> list[Branch]:
        seen: set[str] = set()
        for branch in branches:
            if branch.name in seen:
                raise ValueError(f"branch name {branch.name!r} is used more than once")
            seen.add(branch.name)
        return branches


class ConditionalNode(NodeKind):
    """Evaluates each branch's `when` in order and activates the first truthy one's handle."""

    type = "conditional"
    config_model = ConditionalConfig
    pure = True
    description = (
        "Routes the run: the first branch whose condition is truthy is taken, else 'else'."
    )
    # Why raw: conditions are evaluated at routing time, one by one, not rendered up front.
    raw_fields = frozenset({"branches"})
    expression_fields = frozenset({"branches"})

    def output_handles(self, config: BaseModel) -> frozenset[str] | None:
        branches = getattr(config, "branches", None) or []
        return frozenset(branch.name for branch in branches) | {ELSE_HANDLE}

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        # The raw config may be malformed (this runs during validation): take what is usable.
        branches = config.get("branches") if isinstance(config, Mapping) else None
        if not isinstance(branches, list):
            return []
        found: list[tuple[str, str]] = []
        for index, branch in enumerate(branches):
            when = branch.get("when") if isinstance(branch, Mapping) else None
            if isinstance(when, str):
                found.append((f"$.config.branches[{index}].when", when))
        return found

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ConditionalConfig, ctx.config)
        evaluated: list[dict[str, Any]] = []
        taken = ELSE_HANDLE
        for branch in config.branches:
            try:
                value = ctx.evaluate(branch.when)
            except Exception as exc:
                # The engine's evaluator raises TemplateError, a plugin's may raise anything:
                # either way the message must reach the record, naming the branch.
                raise NodeError(
                    f"condition of branch {branch.name!r} ({branch.when!r}) failed: {exc}",
                    stage=ErrorStage.routing,
                    category=ErrorCategory.permanent,
                    details=ErrorDetails(
                        type=type(exc).__name__,
                        message=str(exc),
                        context={"branch": branch.name, "when": branch.when},
                    ),
                    metadata={"evaluated": evaluated},
                ) from exc
            holds = bool(value)
            evaluated.append({"name": branch.name, "result": holds})
            if holds:
                taken = branch.name
                break
        output = {"branch": taken, "evaluated": evaluated}
        return NodeResult(
            output=output,
            handle=taken,
            handle_outputs={taken: {"type": "json", "data": output}},
        )
