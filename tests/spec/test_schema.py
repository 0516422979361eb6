"""The workflow JSON Schema: the normative example passes, per-kind config is checked."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from stepline.nodes.base import NodeKind
from stepline.spec.schema import SCHEMA_ID, workflow_json_schema


@pytest.fixture
def validator(kinds: dict[str, NodeKind]) -> Draft202012Validator:
    schema = workflow_json_schema(kinds)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(validator: Draft202012Validator, document: dict[str, Any]) -> list[str]:
    return [error.message for error in validator.iter_errors(document)]


def test_schema_header(kinds: dict[str, NodeKind]) -> None:
    schema = workflow_json_schema(kinds)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["title"]
    assert schema["description"]


def test_normative_example_validates(
    validator: Draft202012Validator, order_triage: dict[str, Any]
) -> None:
    assert errors(validator, order_triage) == []


def test_unknown_node_type_fails(
    validator: Draft202012Validator, order_triage: dict[str, Any]
) -> None:
    order_triage["nodes"][0]["type"] = "python"
    assert any("'python' is not one of" in message for message in errors(validator, order_triage))


def test_config_is_checked_against_its_kind(
    validator: Draft202012Validator, order_triage: dict[str, Any]
) -> None:
    del order_triage["nodes"][0]["config"]["code"]
    assert any("'code' is a required property" in m for m in errors(validator, order_triage))


def test_nested_kind_definitions_are_reachable(
    validator: Draft202012Validator, order_triage: dict[str, Any]
) -> None:
    order_triage["nodes"][1]["config"]["branches"][0] = {"name": "high"}
    assert any("'when' is a required property" in m for m in errors(validator, order_triage))


def test_template_may_stand_in_a_rendered_field_but_not_a_raw_one(
    validator: Draft202012Validator, order_triage: dict[str, Any]
) -> None:
    order_triage["nodes"].append(
        {
            "id": "call",
            "type": "api_call",
            "config": {
                "url": "https://x",
                "timeout_s": "{{ inputs.timeout }}",
                "retries": ["{{ inputs.first }}"],
            },
        }
    )
    assert errors(validator, order_triage) == []
    order_triage["nodes"][-1]["config"]["timeout_s"] = "soon"
    assert errors(validator, order_triage) != []
    order_triage["nodes"][-1]["config"]["timeout_s"] = 5
    order_triage["nodes"][1]["config"]["branches"] = "{{ inputs.branches }}"
    assert errors(validator, order_triage) != []
