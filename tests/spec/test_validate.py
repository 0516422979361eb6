"""Workflow validation: every problem at once, each with its node id and JSON path."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from stepline.nodes.base import NodeKind
from stepline.spec.models import WorkflowSpec
from stepline.spec.validate import (
    ValidationIssue,
    WorkflowInvalid,
    load_workflow,
    validate_workflow,
)

Kinds = dict[str, NodeKind]


def issues_of(document: Any, kinds: Kinds) -> list[ValidationIssue]:
    return validate_workflow(document, kinds)[1]


def only_issue(document: Any, kinds: Kinds) -> ValidationIssue:
    issues = issues_of(document, kinds)
    assert len(issues) == 1, issues
    return issues[0]


def workflow(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "t", "nodes": list(nodes), "edges": edges or []}


def test_normative_example_is_valid(order_triage: dict[str, Any], kinds: Kinds) -> None:
    spec, issues = validate_workflow(order_triage, kinds)
    assert issues == []
    assert isinstance(spec, WorkflowSpec)
    assert [node.id for node in spec.nodes] == ["score", "route", "flag", "approve", "report"]


def test_load_workflow_returns_spec(order_triage: dict[str, Any], kinds: Kinds) -> None:
    assert load_workflow(order_triage, kinds).name == "order-triage"


def test_load_workflow_raises_with_every_issue(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"][0]["type"] = "nope"
    order_triage["edges"][1]["handle"] = "hgih"
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(order_triage, kinds)
    assert len(caught.value.issues) == 2
    assert "2 problems" in str(caught.value)
    assert "unknown node type 'nope'" in str(caught.value)


def test_document_that_is_not_a_mapping_is_one_issue(kinds: Kinds) -> None:
    issue = only_issue(["not", "a", "workflow"], kinds)
    assert issue.path == "$"
    assert "mapping" in issue.message


def test_structure_error_maps_loc_to_json_path(kinds: Kinds) -> None:
    document = workflow(
        {"id": "a", "type": "reshape", "config": {"output": 1}},
        {"id": "b", "type": "reshape", "config": {"output": 1}, "timeout_s": -1},
        edges=[{"from": "a", "to": "b"}, {"from": "a"}],
    )
    spec, issues = validate_workflow(document, kinds)
    assert spec is None
    assert {(i.path, i.node_id) for i in issues} == {
        ("$.nodes[1].timeout_s", "b"),
        ("$.edges[1].to", "a"),
    }
    assert (
        next(i for i in issues if i.path == "$.edges[1].to").message == "required field is missing"
    )


def test_node_with_broken_structure_still_holds_its_id(kinds: Kinds) -> None:
    document = workflow(
        {"id": "a", "type": "reshape", "config": {"output": "{{ nodes.b.output }}"}},
        {"id": "b", "type": "reshape", "config": {"output": 1}, "on_error": "ignore"},
        edges=[{"from": "b", "to": "a"}],
    )
    issue = only_issue(document, kinds)
    assert (issue.path, issue.node_id) == ("$.nodes[1].on_error", "b")


def test_structure_errors_do_not_hide_other_problems(kinds: Kinds) -> None:
    document = workflow(
        {"id": "a", "type": "reshape", "config": {"output": 1}, "colour": "red"},
        {"id": "b", "type": "nope"},
    )
    paths = {issue.path for issue in issues_of(document, kinds)}
    assert paths == {"$.nodes[0].colour", "$.nodes[1].type"}


def test_unknown_node_type_lists_known_types(kinds: Kinds) -> None:
    issue = only_issue(workflow({"id": "a", "type": "cod", "config": {}}), kinds)
    assert (issue.path, issue.node_id, issue.code) == ("$.nodes[0].type", "a", "unknown_type")
    assert "did you mean 'code'" in issue.message
    assert "api_call, code, conditional, end, filter, reshape, trigger" in issue.message


def test_duplicate_node_id(kinds: Kinds) -> None:
    node = {"id": "a", "type": "reshape", "config": {"output": 1}}
    issue = only_issue(workflow(node, dict(node)), kinds)
    assert (issue.path, issue.code) == ("$.nodes[1].id", "duplicate_id")
    assert "$.nodes[0]" in issue.message


def test_node_id_longer_than_the_limit_is_refused_naming_it(kinds: Kinds) -> None:
    # A node id is a key of every step row and index: a 4,000-character one broke every
    # run of its workflow on PostgreSQL (btree row size), so the definition is refused.
    issue = only_issue(
        workflow({"id": "a" * 4000, "type": "reshape", "config": {"output": 1}}), kinds
    )
    assert issue.path == "$.nodes[0].id"
    assert "at most 128 characters" in issue.message


def test_node_id_at_the_limit_is_accepted(kinds: Kinds) -> None:
    node = {"id": "a" * 128, "type": "reshape", "config": {"output": 1}}
    assert issues_of(workflow(node), kinds) == []


@pytest.mark.parametrize(("end", "path"), [("from", "$.edges[0].from"), ("to", "$.edges[0].to")])
def test_edge_to_missing_node(kinds: Kinds, end: str, path: str) -> None:
    edge = {"from": "a", "to": "a2"} | {end: "ghost"}
    document = workflow(
        {"id": "a", "type": "reshape", "config": {"output": 1}},
        {"id": "a2", "type": "reshape", "config": {"output": 1}},
        edges=[edge],
    )
    issue = only_issue(document, kinds)
    assert (issue.path, issue.code) == (path, "unknown_node")
    assert "'ghost'" in issue.message


def test_edge_handle_the_source_does_not_have(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["edges"][1]["handle"] = "hgh"
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.node_id, issue.code) == (
        "$.edges[1].handle",
        "route",
        "unknown_handle",
    )
    assert "its handles are: else, high" in issue.message


def test_named_handle_on_node_with_only_default_output(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    order_triage["edges"][0]["handle"] = "yes"
    issue = only_issue(order_triage, kinds)
    assert issue.path == "$.edges[0].handle"
    assert "only the default output" in issue.message


def test_cycle_shows_the_path(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"].append({"id": "again", "type": "reshape", "config": {"output": 1}})
    order_triage["edges"] += [{"from": "flag", "to": "again"}, {"from": "again", "to": "score"}]
    issue = only_issue(order_triage, kinds)
    assert issue.code == "cycle"
    assert issue.path == "$.edges[6]"
    assert "score -> route -> flag -> again -> score" in issue.message


def test_template_with_unknown_root_name(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"][2]["config"]["output"]["message"] = "{{ input.customer }}"
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.node_id, issue.code) == (
        "$.nodes[2].config.output.message",
        "flag",
        "unknown_name",
    )
    assert "'input'" in issue.message


def test_template_with_unknown_node(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"][2]["config"]["output"]["message"] = "{{ nodes.scor.output }}"
    issue = only_issue(order_triage, kinds)
    assert issue.code == "unknown_node"
    assert "'scor' (did you mean 'score'?)" in issue.message


def test_template_reading_node_that_is_not_upstream(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    # approve is on the other branch: flag can never see its output.
    order_triage["nodes"][2]["config"]["output"]["message"] = "{{ nodes.approve.output }}"
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.node_id, issue.code) == (
        "$.nodes[2].config.output.message",
        "flag",
        "not_upstream",
    )
    assert "'approve' is not upstream of 'flag'" in issue.message


def test_template_reading_own_output(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"][2]["config"]["output"] = "{{ nodes['flag'].output }}"
    issue = only_issue(order_triage, kinds)
    assert issue.code == "not_upstream"
    assert "its own output" in issue.message


def test_expression_reading_node_that_is_not_upstream(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    order_triage["nodes"][1]["config"]["branches"][0]["when"] = "nodes.report.output"
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.code) == ("$.nodes[1].config.branches[0].when", "not_upstream")
    assert str(issue).startswith("nodes[1] (id 'route') $.nodes[1].config.branches[0].when: ")


@pytest.mark.parametrize(
    "spelling",
    ["$.config.condition", "$.condition", "condition", ".condition"],
)
def test_expression_path_from_kind_lands_under_the_config(spelling: str, kinds: Kinds) -> None:
    class Filter(type(kinds["filter"])):  # type: ignore[misc]
        expression_fields: ClassVar[frozenset[str]] = frozenset()

        def expressions(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
            return [(spelling, config["condition"])]

    document = workflow({"id": "f", "type": "filter", "config": {"condition": "secret"}})
    issue = only_issue(document, {"filter": Filter()})
    assert (issue.path, issue.code) == ("$.nodes[0].config.condition", "unknown_name")


def test_expression_syntax_error(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"][1]["config"]["branches"][0]["when"] = "nodes.score.output.risk >"
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.code) == ("$.nodes[1].config.branches[0].when", "template_syntax")


def test_expression_field_is_checked(kinds: Kinds) -> None:
    document = workflow({"id": "f", "type": "filter", "config": {"condition": "inputs.x and y"}})
    issue = only_issue(document, kinds)
    assert (issue.path, issue.code) == ("$.nodes[0].config.condition", "unknown_name")


def test_raw_field_is_not_checked_as_template(kinds: Kinds) -> None:
    code = "def main(inputs):\n    return '{{ whatever.undefined }}'\n"
    assert issues_of(workflow({"id": "c", "type": "code", "config": {"code": code}}), kinds) == []


def test_missing_and_ill_typed_config_fields(kinds: Kinds) -> None:
    document = workflow(
        {"id": "call", "type": "api_call", "config": {"timeout_s": "soon", "extra": 1}}
    )
    issues = issues_of(document, kinds)
    assert {(i.path, i.node_id, i.code) for i in issues} == {
        ("$.nodes[0].config.url", "call", "config"),
        ("$.nodes[0].config.timeout_s", "call", "config"),
        ("$.nodes[0].config.extra", "call", "config"),
    }
    assert any("required field is missing" == i.message for i in issues)


def test_template_may_stand_where_a_number_is_expected(kinds: Kinds) -> None:
    config = {
        "url": "https://x/{{ inputs.path }}",
        "timeout_s": "{{ inputs.timeout }}",
        "method": "{{ inputs.method }}",
        "retries": ["{{ inputs.first }}", 2],
    }
    assert issues_of(workflow({"id": "call", "type": "api_call", "config": config}), kinds) == []


def test_template_in_raw_field_must_still_have_the_right_type(kinds: Kinds) -> None:
    config = {"branches": "{{ inputs.branches }}"}
    issue = only_issue(workflow({"id": "r", "type": "conditional", "config": config}), kinds)
    assert (issue.path, issue.code) == ("$.nodes[0].config.branches", "config")


def test_edge_into_kind_without_inbound(kinds: Kinds) -> None:
    document = workflow(
        {"id": "a", "type": "reshape", "config": {"output": 1}},
        {"id": "t", "type": "trigger"},
        edges=[{"from": "a", "to": "t"}],
    )
    issue = only_issue(document, kinds)
    assert (issue.path, issue.code) == ("$.edges[0].to", "no_inbound")


def test_edge_out_of_kind_without_outbound(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"].append({"id": "after", "type": "reshape", "config": {"output": 1}})
    order_triage["edges"].append({"from": "report", "to": "after"})
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.node_id, issue.code) == ("$.edges[5].from", "report", "no_outbound")


def test_duplicate_edge(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["edges"].append({"from": "flag", "to": "report"})
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.code) == ("$.edges[5]", "duplicate_edge")


def test_inputs_that_are_not_a_json_schema(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["inputs"]["properties"]["amount"] = {"type": "numbr"}
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.code) == ("$.inputs.properties.amount.type", "inputs_schema")
    assert "'numbr'" in issue.message


def test_workflow_output_may_read_any_existing_node(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    order_triage["output"] = {"risk": "{{ nodes.score.output.risk }}", "to": "{{ nodes.ghost }}"}
    issue = only_issue(order_triage, kinds)
    assert (issue.path, issue.node_id, issue.code) == ("$.output.to", None, "unknown_node")


def test_unreachable_node_is_fine(order_triage: dict[str, Any], kinds: Kinds) -> None:
    order_triage["nodes"].append({"id": "island", "type": "reshape", "config": {"output": 1}})
    assert issues_of(order_triage, kinds) == []


def test_five_different_problems_are_all_reported(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    order_triage["nodes"][0]["type"] = "python"  # unknown type
    order_triage["nodes"].append({"id": "flag", "type": "end"})  # duplicate id
    order_triage["edges"][1]["handle"] = "hi"  # unknown handle
    order_triage["nodes"][4]["config"]["output"] = "{{ env.token }}"  # unknown name
    order_triage["inputs"]["required"] = "amount"  # not a JSON Schema
    issues = issues_of(order_triage, kinds)
    assert sorted(issue.code for issue in issues) == [
        "duplicate_id",
        "inputs_schema",
        "unknown_handle",
        "unknown_name",
        "unknown_type",
    ]
    by_code = {issue.code: issue for issue in issues}
    assert by_code["unknown_type"].node_id == "score"
    assert by_code["duplicate_id"].path == "$.nodes[5].id"
    assert by_code["unknown_handle"].path == "$.edges[1].handle"
    assert by_code["unknown_name"].path == "$.nodes[4].config.output"
    assert by_code["inputs_schema"].path == "$.inputs.required"


def test_issue_str_names_node_index_and_id() -> None:
    issue = ValidationIssue(path="$.nodes[2].config.x", message="bad", node_id="route")
    assert str(issue) == "nodes[2] (id 'route') $.nodes[2].config.x: bad"
    assert str(ValidationIssue(path="$.edges[1].to", message="bad")) == "$.edges[1].to: bad"


def test_validation_does_not_change_the_document(
    order_triage: dict[str, Any], kinds: Kinds
) -> None:
    before = copy.deepcopy(order_triage)
    validate_workflow(order_triage, kinds)
    assert order_triage == before


def test_ten_thousand_node_workflow_validates_quickly(kinds: Kinds) -> None:
    count = 10_000
    nodes = [{"id": "n0", "type": "reshape", "config": {"output": "{{ inputs.x }}"}}]
    nodes += [
        {"id": f"n{i}", "type": "reshape", "config": {"output": f"{{{{ nodes.n{i - 1}.output }}}}"}}
        for i in range(1, count)
    ]
    edges = [{"from": f"n{i - 1}", "to": f"n{i}"} for i in range(1, count)]
    started = time.perf_counter()
    spec, issues = validate_workflow(workflow(*nodes, edges=edges), kinds)
    assert issues == []
    assert spec is not None
    assert time.perf_counter() - started < 15


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True, 10**6])
def test_concurrency_must_be_a_positive_whole_number_within_the_bound(
    value: object, kinds: Kinds
) -> None:
    document = workflow({"id": "a", "type": "reshape", "config": {"output": 1}})
    document["concurrency"] = value
    assert only_issue(document, kinds).path == "$.concurrency"


def test_concurrency_is_part_of_the_spec(kinds: Kinds) -> None:
    document = workflow({"id": "a", "type": "reshape", "config": {"output": 1}})
    document["concurrency"] = 3
    spec, issues = validate_workflow(document, kinds)
    assert issues == [] and spec is not None and spec.concurrency == 3
