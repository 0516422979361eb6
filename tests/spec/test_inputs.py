"""Run inputs against the workflow's JSON Schema: every problem, each naming its field."""

from __future__ import annotations

from typing import Any

from stepline.spec.inputs import validate_run_inputs

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "customer": {"type": "string"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
        },
        "email": {"type": "string", "format": "email"},
    },
    "required": ["amount", "customer"],
}


def test_valid_inputs_have_no_issues() -> None:
    assert validate_run_inputs(SCHEMA, {"amount": 12.5, "customer": "ACME"}) == []


def test_wrong_type_names_the_field() -> None:
    issues = validate_run_inputs(SCHEMA, {"amount": "abc", "customer": "ACME"})
    assert [(i.path, i.message) for i in issues] == [
        ("$.inputs.amount", "amount: 'abc' is not of type 'number'")
    ]


def test_missing_required_field_points_at_the_field() -> None:
    issues = validate_run_inputs(SCHEMA, {"amount": 1})
    assert [(i.path, i.message) for i in issues] == [
        ("$.inputs.customer", "customer: required property is missing")
    ]


def test_all_errors_are_collected() -> None:
    inputs = {"amount": "abc", "items": [{"sku": 1}], "email": "not-an-email"}
    issues = validate_run_inputs(SCHEMA, inputs)
    assert sorted(i.path for i in issues) == [
        "$.inputs.amount",
        "$.inputs.customer",
        "$.inputs.email",
        "$.inputs.items[0].sku",
    ]
    assert "items[0].sku: 1 is not of type 'string'" in [i.message for i in issues]


def test_unexpected_property_is_named() -> None:
    schema = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    issues = validate_run_inputs(schema, {"a": 1, "b": 2, "c": 3})
    assert [i.path for i in issues] == ["$.inputs.b", "$.inputs.c"]
    assert issues[0].message == "b: unexpected property (not in the schema)"


def test_inputs_that_are_not_an_object() -> None:
    issues = validate_run_inputs(SCHEMA, ["amount"])
    assert [(i.path, i.message) for i in issues] == [
        ("$.inputs", "inputs: ['amount'] is not of type 'object'")
    ]


def test_invalid_schema_is_one_issue_not_a_crash() -> None:
    issues = validate_run_inputs({"type": "objekt"}, {})
    assert len(issues) == 1
    assert issues[0].code == "inputs_schema"
    assert "not a valid JSON Schema" in issues[0].message
