"""The simple node kinds: start, end, note, conditional, reshape and merge_dicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ValidationError

from stepline.nodes.base import NodeContext, NodeError, NodeKind
from stepline.nodes.conditional import ConditionalNode
from stepline.nodes.end import EndNode
from stepline.nodes.merge_dicts import MergeDictsNode
from stepline.nodes.note import NoteNode
from stepline.nodes.reshape import ReshapeNode
from stepline.nodes.start import StartNode
from stepline.records import ErrorCategory, ErrorStage
from stepline.spec.models import NodeSpec

_ENV = ImmutableSandboxedEnvironment()
_WHOLE_EXPRESSION = re.compile(r"^\{\{((?:(?!\{\{|\}\}).)*)\}\}$", re.DOTALL)


def _evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    return _ENV.compile_expression(expr)(**scope)


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    """A stand-in for the engine's rendering: a whole-string template keeps its value's type."""
    if isinstance(value, str):
        match = _WHOLE_EXPRESSION.match(value)
        if match:
            return _evaluate(match.group(1), scope)
        return _ENV.from_string(value).render(**scope)
    if isinstance(value, dict):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope) for item in value]
    return value


def make_ctx(
    kind: NodeKind, config: dict[str, Any], scope: Mapping[str, Any] | None = None
) -> NodeContext:
    """A NodeContext as the engine builds it: non-raw fields rendered, then validated."""
    scope = scope if scope is not None else {"inputs": {}, "nodes": {}}
    inputs = {
        key: value if key in kind.raw_fields else _render(value, scope)
        for key, value in config.items()
    }
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id="n1", type=kind.type, config=config),
        step_id="n1",
        attempt=1,
        inputs=inputs,
        config=kind.config_model.model_validate(inputs),
        timeout_s=None,
        evaluate=lambda expr: _evaluate(expr, scope),
        scope=scope,
    )


ALL_KINDS: list[NodeKind] = [
    StartNode(),
    EndNode(),
    NoteNode(),
    ConditionalNode(),
    ReshapeNode(),
    MergeDictsNode(),
]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda kind: kind.type)
def test_every_config_field_is_documented_and_extra_keys_are_rejected(kind: NodeKind) -> None:
    schema = kind.config_model.model_json_schema()
    undocumented = [
        name for name, prop in schema.get("properties", {}).items() if not prop.get("description")
    ]
    assert undocumented == []
    assert schema.get("additionalProperties") is False
    assert kind.description


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda kind: kind.type)
def test_unknown_config_key_fails_validation(kind: NodeKind) -> None:
    with pytest.raises(ValidationError, match="typo"):
        kind.config_model.model_validate({"typo": 1})


# start


async def test_start_outputs_the_run_inputs() -> None:
    kind = StartNode()
    scope = {"inputs": {"name": "Ada", "n": 3}, "nodes": {}}
    result = await kind.run(make_ctx(kind, {}, scope))
    assert result.output == {"name": "Ada", "n": 3}
    assert result.handle is None


def test_start_accepts_no_inbound_edges() -> None:
    assert StartNode.inbound == "none"
    assert StartNode.outbound == "any"


# end


async def test_end_outputs_its_rendered_output() -> None:
    kind = EndNode()
    scope = {"inputs": {"x": 2}, "nodes": {"sum": {"output": 40}}}
    config = {"output": {"total": "{{ nodes.sum.output + inputs.x }}", "label": "x={{ inputs.x }}"}}
    result = await kind.run(make_ctx(kind, config, scope))
    assert result.output == {"total": 42, "label": "x=2"}


async def test_end_without_output_outputs_null() -> None:
    kind = EndNode()
    result = await kind.run(make_ctx(kind, {}))
    assert result.output is None


def test_end_has_no_outbound_edges() -> None:
    assert EndNode.outbound == "none"
    assert EndNode.inbound == "any"


# note


async def test_note_outputs_null_and_keeps_its_text_unrendered() -> None:
    kind = NoteNode()
    ctx = make_ctx(kind, {"text": "use {{ inputs.missing.deeper }} here"})
    result = await kind.run(ctx)
    assert result.output is None
    assert ctx.inputs["text"] == "use {{ inputs.missing.deeper }} here"
    assert "text" in NoteNode.raw_fields


# conditional


def _branches(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"branches": [{"name": name, "when": when} for name, when in pairs]}


async def test_conditional_takes_first_truthy_branch_and_stops_evaluating() -> None:
    kind = ConditionalNode()
    scope = {"inputs": {"score": 0.9}, "nodes": {}}
    # "boom" would raise if evaluated: proving evaluation stops at the first truthy branch.
    config = _branches(
        ("low", "inputs.score < 0.5"), ("high", "inputs.score > 0.8"), ("boom", "1 / 0")
    )
    result = await kind.run(make_ctx(kind, config, scope))
    expected = {
        "branch": "high",
        "evaluated": [{"name": "low", "result": False}, {"name": "high", "result": True}],
    }
    assert result.output == expected
    assert result.handle == "high"
    assert result.handle_outputs == {"high": {"type": "json", "data": expected}}


async def test_conditional_takes_else_when_no_branch_holds() -> None:
    kind = ConditionalNode()
    scope = {"inputs": {"items": []}, "nodes": {}}
    config = _branches(("many", "inputs['items'] | length > 1"), ("one", "inputs['items']"))
    result = await kind.run(make_ctx(kind, config, scope))
    assert result.handle == "else"
    assert result.output == {
        "branch": "else",
        "evaluated": [{"name": "many", "result": False}, {"name": "one", "result": False}],
    }
    assert result.handle_outputs == {"else": {"type": "json", "data": result.output}}


async def test_conditional_branch_is_not_rendered_before_it_is_evaluated() -> None:
    kind = ConditionalNode()
    ctx = make_ctx(kind, _branches(("a", "inputs.flag")), {"inputs": {"flag": True}, "nodes": {}})
    assert ctx.inputs["branches"] == [{"name": "a", "when": "inputs.flag"}]
    result = await kind.run(ctx)
    assert result.handle == "a"


async def test_failing_condition_is_routing_error_naming_the_branch() -> None:
    kind = ConditionalNode()
    config = _branches(("fine", "false"), ("broken", "inputs.x.y.z"))
    ctx = make_ctx(kind, config, {"inputs": {}, "nodes": {}})
    with pytest.raises(NodeError) as caught:
        await kind.run(ctx)
    error = caught.value
    assert error.stage == ErrorStage.routing
    assert error.category == ErrorCategory.permanent
    assert "'broken'" in error.message
    assert "inputs.x.y.z" in error.message
    assert "has no attribute 'x'" in error.message  # jinja's own message is kept
    assert error.details.context == {"branch": "broken", "when": "inputs.x.y.z"}
    assert error.metadata == {"evaluated": [{"name": "fine", "result": False}]}


async def test_condition_error_of_any_exception_type_is_a_routing_error() -> None:
    class EvaluatorError(Exception):
        pass

    def failing(expr: str) -> Any:
        raise EvaluatorError(f"cannot evaluate {expr}")

    kind = ConditionalNode()
    ctx = make_ctx(kind, _branches(("a", "inputs.x")))
    ctx.evaluate = failing
    with pytest.raises(NodeError, match=r"branch 'a'.*cannot evaluate inputs\.x") as caught:
        await kind.run(ctx)
    assert caught.value.stage == ErrorStage.routing
    assert caught.value.details.type == "EvaluatorError"


def test_conditional_handles_are_branch_names_and_else() -> None:
    kind = ConditionalNode()
    config = kind.config_model.model_validate(_branches(("yes", "true"), ("maybe", "false")))
    assert kind.output_handles(config) == frozenset({"yes", "maybe", "else"})


def test_conditional_branches_are_raw_expression_fields() -> None:
    assert ConditionalNode.raw_fields == frozenset({"branches"})
    assert ConditionalNode.expression_fields == frozenset({"branches"})


def test_conditional_expressions_lists_each_when_with_its_path() -> None:
    kind = ConditionalNode()
    config = _branches(("a", "inputs.x > 1"), ("b", "nodes.n.output"))
    assert kind.expressions(config) == [
        ("$.config.branches[0].when", "inputs.x > 1"),
        ("$.config.branches[1].when", "nodes.n.output"),
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, []),
        ({"branches": "nope"}, []),
        ({"branches": [None, 3, {"name": "a"}]}, []),
        (
            {"branches": ["junk", {"when": 5}, {"name": "b", "when": "inputs.ok"}]},
            [("$.config.branches[2].when", "inputs.ok")],
        ),
    ],
)
def test_conditional_expressions_survive_malformed_config(
    config: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert ConditionalNode().expressions(config) == expected


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"branches": []}, "at least 1"),
        (_branches(("else", "true")), "reserved"),
        (_branches(("a", "true"), ("a", "false")), "'a' is used more than once"),
        (_branches(("has space", "true")), "pattern"),
        (_branches(("a", "")), "at least 1 character"),
        ({}, "Field required"),
    ],
)
def test_conditional_config_rejects_bad_branches(config: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ConditionalNode.config_model.model_validate(config)


# reshape


async def test_reshape_outputs_rendered_mapping() -> None:
    kind = ReshapeNode()
    scope = {"inputs": {"user": {"first": "Ada", "last": "Lovelace"}}, "nodes": {}}
    config = {
        "output": {
            "full_name": "{{ inputs.user.first }} {{ inputs.user.last }}",
            "initials": ["{{ inputs.user.first[0] }}", "{{ inputs.user.last[0] }}"],
            "user": "{{ inputs.user }}",
            "constant": 7,
        }
    }
    result = await kind.run(make_ctx(kind, config, scope))
    assert result.output == {
        "full_name": "Ada Lovelace",
        "initials": ["A", "L"],
        "user": {"first": "Ada", "last": "Lovelace"},
        "constant": 7,
    }


def test_reshape_requires_output() -> None:
    with pytest.raises(ValidationError, match="output"):
        ReshapeNode.config_model.model_validate({})


# merge_dicts


def _merge_scope() -> dict[str, Any]:
    return {
        "inputs": {},
        "nodes": {
            "a": {"output": {"id": 1, "meta": {"x": 1, "tags": ["a"]}, "keep": "a"}},
            "b": {"output": {"id": 2, "meta": {"y": 2, "tags": ["b"]}}},
            "skipped": {"output": None},
        },
    }


_MERGE_INPUTS = ["{{ nodes.a.output }}", "{{ nodes.skipped.output }}", "{{ nodes.b.output }}"]


async def test_merge_dicts_deep_merges_nested_objects_later_wins() -> None:
    kind = MergeDictsNode()
    scope = _merge_scope()
    result = await kind.run(make_ctx(kind, {"inputs": _MERGE_INPUTS}, scope))
    assert result.output == {
        "id": 2,
        "meta": {"x": 1, "y": 2, "tags": ["b"]},
        "keep": "a",
    }
    # The upstream outputs are not changed by merging.
    assert scope["nodes"]["a"]["output"]["meta"] == {"x": 1, "tags": ["a"]}


async def test_merge_dicts_shallow_replaces_top_level_keys_whole() -> None:
    kind = MergeDictsNode()
    config = {"inputs": _MERGE_INPUTS, "strategy": "shallow"}
    result = await kind.run(make_ctx(kind, config, _merge_scope()))
    assert result.output == {"id": 2, "meta": {"y": 2, "tags": ["b"]}, "keep": "a"}


async def test_merge_dicts_with_skip_none_false_rejects_null_input() -> None:
    kind = MergeDictsNode()
    ctx = make_ctx(kind, {"inputs": _MERGE_INPUTS, "skip_none": False}, _merge_scope())
    with pytest.raises(NodeError, match="input 1 is null, not an object") as caught:
        await kind.run(ctx)
    assert caught.value.stage == ErrorStage.input_collection
    assert caught.value.category == ErrorCategory.permanent


@pytest.mark.parametrize(
    ("bad", "described"),
    [([1, 2], "an array"), ("text", "a string"), (3, "a number"), (True, "a boolean")],
)
async def test_merge_dicts_non_object_input_is_input_collection_error(
    bad: Any, described: str
) -> None:
    kind = MergeDictsNode()
    ctx = make_ctx(kind, {"inputs": [{"a": 1}, bad]})
    with pytest.raises(NodeError, match=f"input 1 is {described}, not an object") as caught:
        await kind.run(ctx)
    assert caught.value.stage == ErrorStage.input_collection


async def test_merge_dicts_of_nothing_is_empty_object() -> None:
    kind = MergeDictsNode()
    result = await kind.run(make_ctx(kind, {"inputs": [None]}))
    assert result.output == {}


def test_merge_dicts_rejects_unknown_strategy() -> None:
    with pytest.raises(ValidationError, match="strategy"):
        MergeDictsNode.config_model.model_validate({"inputs": [], "strategy": "zip"})


def test_config_models_are_pydantic_models() -> None:
    for kind in ALL_KINDS:
        assert issubclass(kind.config_model, BaseModel)
