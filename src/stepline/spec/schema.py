"""The JSON Schema of a workflow document, for editors and for clients that check early.

It is the workflow model's own schema, with the node `type` limited to the registered
kinds and each kind's config schema attached by an `if type == K then config: ...` rule.
Template strings (`"{{ ... }}"`) are accepted wherever a rendered config field expects
another type, as validation accepts them at definition time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from stepline.spec.models import WorkflowSpec
from stepline.spec.validate import KindInfo

SCHEMA_ID = "https://stepline.dev/schema/workflow.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TEMPLATE_DEF = "TemplateString"
_TEMPLATE_REF = {"$ref": f"#/$defs/{_TEMPLATE_DEF}"}
_SCHEMA_MAPS = ("properties", "patternProperties")
_ANNOTATIONS = frozenset({"type", "title", "description", "default", "examples"})
_SCHEMA_LISTS = ("prefixItems", "anyOf", "oneOf", "allOf")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "if", "then", "else")


def workflow_json_schema(kinds: Mapping[str, KindInfo]) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a workflow document with these node kinds."""
    schema = WorkflowSpec.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    defs[_TEMPLATE_DEF] = {
        "type": "string",
        "pattern": r"\{\{|\{%",
        "description": "A Jinja template, resolved when the step runs.",
    }
    node = defs["NodeSpec"]
    node["properties"]["type"]["enum"] = sorted(kinds)
    rules = []
    for name in sorted(kinds):
        config_ref = _attach_config(defs, name, kinds[name])
        rules.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"properties": {"config": config_ref}},
            }
        )
    if rules:
        node["allOf"] = rules
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "stepline workflow",
        "description": (
            "A stepline workflow: its run inputs (a JSON Schema), typed nodes with their "
            "config, and the edges between them."
        ),
        **{key: value for key, value in schema.items() if key != "title"},
    }


def _attach_config(defs: dict[str, Any], name: str, kind: KindInfo) -> dict[str, Any]:
    """Put a kind's config schema (and its own definitions) under `defs`; return its $ref."""
    prefix = f"{name}."
    config = kind.config_model.model_json_schema(by_alias=True)
    own_defs = config.pop("$defs", {})
    renamed = {f"#/$defs/{key}": f"#/$defs/{_pointer(prefix + key)}" for key in own_defs}
    config = _rewrite_refs(config, renamed)
    for key, value in own_defs.items():
        defs[prefix + key] = _allow_templates_inside(_rewrite_refs(value, renamed))
    properties = config.get("properties", {})
    for field, field_schema in properties.items():
        if field not in kind.raw_fields:
            properties[field] = _or_template(_allow_templates_inside(field_schema))
    config_name = f"{name}.config"
    defs[config_name] = config
    return {"$ref": f"#/$defs/{_pointer(config_name)}"}


def _pointer(key: str) -> str:
    """`key` escaped as one JSON Pointer token."""
    return key.replace("~", "~0").replace("/", "~1")


def _rewrite_refs(schema: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(schema, dict):
        return {
            key: renamed.get(value, value)
            if key == "$ref" and isinstance(value, str)
            else _rewrite_refs(value, renamed)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rewrite_refs(item, renamed) for item in schema]
    return schema


def _allow_templates_inside(schema: Any) -> Any:
    """`schema` with a template string accepted for every property and item value in it."""
    if not isinstance(schema, dict):
        return schema
    result = copy.copy(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            result[key] = {
                name: _or_template(_allow_templates_inside(value))
                for name, value in schema[key].items()
            }
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            result[key] = [_allow_templates_inside(value) for value in schema[key]]
    for key in _SCHEMA_VALUES:
        value = schema.get(key)
        if isinstance(value, dict):
            inner = _allow_templates_inside(value)
            wrap = key in ("items", "additionalProperties")
            result[key] = _or_template(inner) if wrap else inner
    return result


def _or_template(schema: Any) -> Any:
    """`schema`, or else a template string; unchanged when it already takes any string."""
    if not isinstance(schema, dict) or not schema:
        return schema
    if schema.get("type") == "string" and _ANNOTATIONS.issuperset(schema):
        return schema
    if (
        "$ref" not in schema
        and "type" not in schema
        and not any(key in schema for key in ("anyOf", "oneOf", "allOf", "enum", "const"))
    ):
        return schema  # no type constraint: a string is already valid
    return {"anyOf": [schema, _TEMPLATE_REF]}
