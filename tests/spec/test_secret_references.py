"""`secrets.NAME` in templates: valid anywhere a node's config is rendered, named literally,
and listed (node, JSON path, name) so that a run's secrets are known before it starts."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.nodes.base import NodeKind
from stepline.nodes.registry import default_registry
from stepline.spec.validate import (
    SecretReference,
    load_workflow,
    secret_references,
    validate_workflow,
)

Kinds = dict[str, NodeKind]


def workflow(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "t", "nodes": list(nodes), "edges": [], **extra}


def test_every_config_field_and_expression_may_read_a_secret(kinds: Kinds) -> None:
    document = workflow(
        {"id": "call", "type": "api_call", "config": {"url": "https://x/?t={{ secrets.TOKEN }}"}},
        {"id": "shape", "type": "reshape", "config": {"output": {"h": ["{{ secrets['B_2'] }}"]}}},
        {"id": "pick", "type": "filter", "config": {"condition": "secrets.FLAG == 'on'"}},
        {
            "id": "code",
            "type": "code",
            # `code` is raw: written text, never rendered, so no reference in it.
            "config": {"inputs": {"k": "{{ secrets.TOKEN }}"}, "code": "{{ secrets.NOPE }}"},
        },
    )
    spec = load_workflow(document, kinds)
    assert secret_references(spec) == (
        SecretReference("TOKEN", "call", "$.nodes[0].config.url"),
        SecretReference("B_2", "shape", "$.nodes[1].config.output.h[0]"),
        SecretReference("FLAG", "pick", "$.nodes[2].config.condition"),
        SecretReference("TOKEN", "code", "$.nodes[3].config.inputs.k"),
    )


def test_a_workflow_without_secrets_lists_none(order_triage: dict[str, Any], kinds: Kinds) -> None:
    assert secret_references(load_workflow(order_triage, kinds)) == ()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ secrets }}", "secrets.NAME"),
        ("{{ secrets[inputs.which] }}", "secrets.NAME"),
        ("{{ secrets['not a name'] }}", "not a secret name"),
        ("{{ secrets['" + "A" * 129 + "'] }}", "at most 128"),
    ],
)
def test_a_secret_is_named_literally_with_a_valid_name(
    template: str, message: str, kinds: Kinds
) -> None:
    _, issues = validate_workflow(
        workflow({"id": "s", "type": "reshape", "config": {"output": template}}), kinds
    )
    assert [(i.path, i.node_id, i.code) for i in issues] == [
        ("$.nodes[0].config.output", "s", "secret_name")
    ]
    assert message in issues[0].message


def test_the_workflow_output_cannot_read_a_secret(kinds: Kinds) -> None:
    document = workflow(
        {"id": "s", "type": "reshape", "config": {"output": 1}}, output="{{ secrets.TOKEN }}"
    )
    _, issues = validate_workflow(document, kinds)
    assert [(i.path, i.code) for i in issues] == [("$.output", "unknown_name")]


def test_loop_bodies_and_review_conditions_are_searched_too() -> None:
    document = workflow(
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "{{ inputs.items }}"},
            "body": {
                "nodes": [
                    {
                        "id": "inner",
                        "type": "reshape",
                        "config": {"output": "{{ secrets.INNER }}"},
                        "review": {"when": "output == secrets.REVIEW"},
                    }
                ]
            },
        }
    )
    spec = load_workflow(document, default_registry())
    assert {(ref.name, ref.node_id) for ref in secret_references(spec)} == {
        ("INNER", "inner"),
        ("REVIEW", "inner"),
    }
