"""Fake node kinds and the normative example, shared by the spec tests.

The real kinds live in stepline.nodes and are written elsewhere; these implement the same
NodeKind interface with just enough config to exercise validation and the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.spec.loader import parse_workflow_text

ORDER_TRIAGE_YAML = """\
name: order-triage
description: Score an order, route it by risk, and report.
inputs:
  type: object
  properties:
    amount: {type: number}
    customer: {type: string}
  required: [amount, customer]
nodes:
  - id: score
    type: code
    config:
      inputs: {amount: "{{ inputs.amount }}"}
      code: |
        def main(inputs):
            return {"risk": inputs["amount"] / 1000}
  - id: route
    type: conditional
    config:
      branches:
        - {name: high, when: "nodes.score.output.risk > 0.5"}
  - id: flag
    type: reshape
    config:
      output: {message: "Review {{ inputs.customer }}: risk {{ nodes.score.output.risk }}"}
  - id: approve
    type: reshape
    config:
      output: {message: "Approved {{ inputs.customer }}"}
  - id: report
    type: end
    config:
      output: "{{ nodes.flag.output or nodes.approve.output }}"
edges:
  - {from: score, to: route}
  - {from: route, handle: high, to: flag}
  - {from: route, handle: else, to: approve}
  - {from: flag, to: report}
  - {from: approve, to: report}
"""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeConfig(_Config):
    inputs: dict[str, Any] = Field(default_factory=dict)
    code: str


class Branch(_Config):
    name: str
    when: str


class ConditionalConfig(_Config):
    branches: list[Branch] = Field(min_length=1)


class ReshapeConfig(_Config):
    output: Any


class EndConfig(_Config):
    output: Any = None


class ApiCallConfig(_Config):
    url: str
    method: Literal["GET", "POST"] = "GET"
    timeout_s: float = 30.0
    retries: list[int] = Field(default_factory=list)


class FilterConfig(_Config):
    condition: str


class TriggerConfig(_Config):
    pass


class _FakeKind(NodeKind):
    async def run(self, ctx: NodeContext) -> NodeResult:
        raise NotImplementedError("definition tests never run nodes")


class CodeKind(_FakeKind):
    type = "code"
    config_model = CodeConfig
    raw_fields: ClassVar[frozenset[str]] = frozenset({"code"})


class ConditionalKind(_FakeKind):
    type = "conditional"
    config_model = ConditionalConfig
    raw_fields: ClassVar[frozenset[str]] = frozenset({"branches"})

    def output_handles(self, config: BaseModel) -> frozenset[str] | None:
        assert isinstance(config, ConditionalConfig)
        return frozenset({branch.name for branch in config.branches} | {"else"})

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [
            (f"$.config.branches[{i}].when", branch["when"])
            for i, branch in enumerate(config.get("branches", []))
        ]


class ReshapeKind(_FakeKind):
    type = "reshape"
    config_model = ReshapeConfig


class EndKind(_FakeKind):
    type = "end"
    config_model = EndConfig
    outbound: ClassVar[Literal["any", "none"]] = "none"


class ApiCallKind(_FakeKind):
    type = "api_call"
    config_model = ApiCallConfig


class FilterKind(_FakeKind):
    type = "filter"
    config_model = FilterConfig
    raw_fields: ClassVar[frozenset[str]] = frozenset({"condition"})
    expression_fields: ClassVar[frozenset[str]] = frozenset({"condition"})


class TriggerKind(_FakeKind):
    type = "trigger"
    config_model = TriggerConfig
    inbound: ClassVar[Literal["any", "none"]] = "none"


FAKE_KINDS: dict[str, NodeKind] = {
    kind.type: kind
    for kind in (
        CodeKind(),
        ConditionalKind(),
        ReshapeKind(),
        EndKind(),
        ApiCallKind(),
        FilterKind(),
        TriggerKind(),
    )
}


@pytest.fixture
def kinds() -> dict[str, NodeKind]:
    return FAKE_KINDS


@pytest.fixture
def order_triage() -> dict[str, Any]:
    """The normative example, freshly parsed (tests may change their copy)."""
    return parse_workflow_text(ORDER_TRIAGE_YAML, filename="order-triage.yaml")
