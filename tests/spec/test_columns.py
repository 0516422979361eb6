"""A workflow's `column_config`: validated with the definition (each problem at its JSON
path), described by the published schema, and `mapped_output` picking values out of a
step's output by field path."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stepline.nodes.base import NodeKind
from stepline.nodes.registry import load_registry
from stepline.spec.columns import FieldPathError, mapped_output, parse_field_path, pick
from stepline.spec.models import FIELD_PATH_PATTERN, ColumnSpec
from stepline.spec.schema import workflow_json_schema
from stepline.spec.validate import validate_workflow

Kinds = dict[str, NodeKind]

GOOD_PATHS = {
    "result.output": ("result", "output"),
    "choices[0].message.content": ("choices", 0, "message", "content"),
    "[0].name": (0, "name"),
    'rows[2]["a.b"]': ("rows", 2, "a.b"),
    '["x[1]"]': ("x[1]",),
    "0": ("0",),
    "with space.and-dash": ("with space", "and-dash"),
}
BAD_PATHS = {
    "a..b": "character 3",
    ".a": "character 1",
    "a.": "the end",
    "a[-1]": "character 2",
    "a[x]": "character 2",
    "a[0": "character 2",
    "a[01]": "character 2",
    "a[0]b": "character 5",
    "": "at least one",
}


def column(**fields: Any) -> dict[str, Any]:
    return {"id": "c1", "stepId": "score", "fieldPath": "risk", "label": "Risk"} | fields


def with_columns(document: dict[str, Any], *columns: Any) -> dict[str, Any]:
    return document | {"column_config": list(columns)}


def problems(document: dict[str, Any], kinds: Kinds) -> list[tuple[str, str, str]]:
    _, issues = validate_workflow(document, kinds)
    return [(issue.path, issue.code, issue.message) for issue in issues]


@pytest.mark.parametrize(("path", "segments"), GOOD_PATHS.items())
def test_field_path_syntax_accepts(path: str, segments: tuple[Any, ...]) -> None:
    assert parse_field_path(path) == segments
    assert re.match(FIELD_PATH_PATTERN, path), "the published pattern disagrees"


@pytest.mark.parametrize(("path", "where"), BAD_PATHS.items())
def test_field_path_syntax_refuses_naming_where(path: str, where: str) -> None:
    with pytest.raises(FieldPathError, match=re.escape(where)):
        parse_field_path(path)
    assert not re.match(FIELD_PATH_PATTERN, path), "the published pattern disagrees"


def test_valid_columns_are_part_of_the_definition(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    document = with_columns(order_triage, column(), column(id="c2", stepId="report", label="R"))
    spec, issues = validate_workflow(document, kinds)
    assert issues == []
    assert spec is not None and spec.column_config is not None
    assert [(c.id, c.step_id, c.field_path, c.label) for c in spec.column_config] == [
        ("c1", "score", "risk", "Risk"),
        ("c2", "report", "risk", "R"),
    ]
    assert spec.model_dump(by_alias=True, exclude_unset=True)["column_config"][0] == column()


def test_a_workflow_without_columns_has_none(order_triage: dict[str, Any], kinds: Kinds) -> None:
    spec, _ = validate_workflow(order_triage, kinds)
    assert spec is not None and spec.column_config is None


def test_every_column_problem_is_reported_at_its_path(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    document = with_columns(
        order_triage,
        column(stepId="scroe"),
        column(fieldPath="risk..score", label="Other"),
        column(id="c2", label="Other"),
    )
    assert problems(document, kinds) == [
        (
            "$.column_config[0].stepId",
            "unknown_node",
            "stepId 'scroe' names no node of the workflow (did you mean 'score'?)",
        ),
        (
            "$.column_config[1].fieldPath",
            "field_path",
            "expected a key at character 6 of 'risk..score', found '.'",
        ),
        (
            "$.column_config[1].id",
            "duplicate_id",
            "duplicate column id 'c1' (first used by $.column_config[0])",
        ),
        (
            "$.column_config[2].label",
            "duplicate_label",
            "label 'Other' is already used for step 'score' by $.column_config[1]; "
            "mapped_output is keyed by label",
        ),
    ]


def test_column_structure_errors_name_the_field(order_triage: dict[str, Any], kinds: Kinds) -> None:
    document = with_columns(
        order_triage, {"id": 7, "stepId": "score", "label": "L", "width": 3}, column(label="")
    )
    found = {(path, code) for path, code, _ in problems(document, kinds)}
    assert found == {
        ("$.column_config[0].id", "structure"),
        ("$.column_config[0].fieldPath", "structure"),
        ("$.column_config[0].width", "structure"),
        ("$.column_config[1].label", "structure"),
    }


def test_column_config_must_be_a_list(order_triage: dict[str, Any], kinds: Kinds) -> None:
    found = problems(order_triage | {"column_config": {"id": "c1"}}, kinds)
    assert [(path, code) for path, code, _ in found] == [("$.column_config", "structure")]


def test_a_column_may_name_a_node_inside_a_loop_body() -> None:
    kinds = dict(load_registry(plugins=False).items())
    document = {
        "name": "loop",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": [1, 2]},
                "body": {"nodes": [{"id": "double", "type": "reshape", "config": {"output": 2}}]},
            }
        ],
        "column_config": [column(stepId="double"), column(id="c2", stepId="nowhere")],
    }
    assert [(p, c) for p, c, _ in problems(document, kinds)] == [
        ("$.column_config[1].stepId", "unknown_node")
    ]


def test_the_published_schema_describes_columns(kinds: Kinds) -> None:
    schema = workflow_json_schema(kinds)
    assert schema["properties"]["column_config"]["anyOf"][0] == {
        "items": {"$ref": "#/$defs/ColumnSpec"},
        "type": "array",
    }
    spec = schema["$defs"]["ColumnSpec"]
    assert spec["required"] == ["id", "stepId", "fieldPath", "label"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["fieldPath"]["pattern"] == FIELD_PATH_PATTERN


OUTPUT = {
    "result": {"output": "a summary", "scores": [0.1, 0.9]},
    "a.b": {"c": 1},
    "empty": None,
}


def columns(*specs: tuple[str, str, str]) -> list[ColumnSpec]:
    return [
        ColumnSpec(id=f"c{i}", stepId=step, fieldPath=path, label=label)
        for i, (step, path, label) in enumerate(specs)
    ]


def test_mapped_output_picks_each_columns_value_under_its_label() -> None:
    config = columns(
        ("agent", "result.output", "Summary"),
        ("agent", "result.scores[1]", "Best"),
        ("agent", '["a.b"].c', "Dotted"),
        ("agent", "empty", "Null"),
        ("other", "result.output", "Elsewhere"),
    )
    assert mapped_output(config, "agent", OUTPUT) == {
        "Summary": "a summary",
        "Best": 0.9,
        "Dotted": 1,
        "Null": None,
    }


@pytest.mark.parametrize(
    "path", ["missing", "result.output.deeper", "result.scores[2]", "result[0]", "result.scores.x"]
)
def test_a_path_that_leads_nowhere_gives_null_under_its_label(path: str) -> None:
    assert mapped_output(columns(("agent", path, "Cell")), "agent", OUTPUT) == {"Cell": None}


def test_mapped_output_is_null_without_columns_for_the_step_or_without_output() -> None:
    config = columns(("agent", "result.output", "Summary"))
    assert mapped_output(config, "other", OUTPUT) is None
    assert mapped_output(None, "agent", OUTPUT) is None
    assert mapped_output(config, "agent", None) is None


def test_pick_reads_lists_and_scalars() -> None:
    assert pick([{"x": [5, 6]}], (0, "x", 1)) == 6
    assert pick("text", ()) == "text"
    assert pick({"0": "zero"}, ("0",)) == "zero"
    assert pick(["zero"], ("0",)) is None
