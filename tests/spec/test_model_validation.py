"""Validating model, classifier and extract nodes: against the server's providers, with the
provider's key listed among the run's secrets, and every problem naming node and field."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.nodes.classifier import ClassifierNode
from stepline.nodes.extract import ExtractNode
from stepline.nodes.model import ModelNode
from stepline.nodes.registry import load_registry
from stepline.providers.config import ProviderCatalog, ProviderConfigError
from stepline.spec.validate import (
    SecretReference,
    ValidationIssue,
    load_workflow,
    may_read_secrets,
    secret_references,
    validate_workflow,
)
from support.model_nodes import KEY_SECRET, catalog, provider

LOCAL = catalog(
    provider("http://127.0.0.1:9/v1"),
    provider("http://127.0.0.1:9/v1", name="keyless", api_key=None, default_model=None),
)


def kinds(providers: Any = LOCAL) -> dict[str, Any]:
    registry: dict[str, Any] = dict(load_registry(plugins=False))
    for kind in (ModelNode, ClassifierNode, ExtractNode):
        registry[kind.type] = kind(providers)
    return registry


def workflow(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "t", "nodes": list(nodes), "edges": edges or []}


def ask(**config: Any) -> dict[str, Any]:
    return {"id": "ask", "type": "model", "config": {"prompt": "hi", **config}}


def issues(document: dict[str, Any], providers: Any = LOCAL) -> list[ValidationIssue]:
    return validate_workflow(document, kinds(providers))[1]


def test_a_provider_node_reads_the_providers_key_secret() -> None:
    spec = load_workflow(workflow(ask(provider="local")), kinds())
    assert secret_references(spec) == (
        SecretReference(KEY_SECRET, "ask", "$.nodes[0].config.provider"),
    )


def test_a_provider_without_a_key_reads_no_secret() -> None:
    spec = load_workflow(workflow(ask(provider="keyless", model="m")), kinds())
    assert secret_references(spec) == ()


def test_provider_keys_are_read_at_any_depth_alongside_template_secrets() -> None:
    loop = {
        "id": "each",
        "type": "for_each",
        "config": {"items": [1, 2]},
        "body": {
            "nodes": [
                {
                    "id": "sort",
                    "type": "classifier",
                    "config": {
                        "provider": "local",
                        "input": "{{ loop.item }} {{ secrets.SALT }}",
                        "categories": [{"name": "a"}, {"name": "b"}],
                    },
                }
            ]
        },
    }
    spec = load_workflow(workflow(loop), kinds())
    assert set(secret_references(spec)) == {
        SecretReference(KEY_SECRET, "sort", "$.nodes[0].body.nodes[0].config.provider"),
        SecretReference("SALT", "sort", "$.nodes[0].body.nodes[0].config.input"),
    }


def test_an_inline_key_is_a_secret_template() -> None:
    node = ask(base_url="http://127.0.0.1:9/v1", model="m", api_key="{{ secrets.MINE }}")
    spec = load_workflow(workflow(node), kinds())
    assert secret_references(spec) == (SecretReference("MINE", "ask", "$.nodes[0].config.api_key"),)


@pytest.mark.parametrize(
    ("node", "path", "words"),
    [
        (
            ask(provider="nope"),
            "$.nodes[0].config.provider",
            "no provider 'nope' is configured (configured: keyless, local)",
        ),
        # The provider is written as is: a template there is a name no provider has.
        (
            ask(provider="{{ inputs.p }}"),
            "$.nodes[0].config.provider",
            "no provider '{{ inputs.p }}'",
        ),
        (
            ask(provider="keyless"),
            "$.nodes[0].config.model",
            "required: provider 'keyless' has no default_model",
        ),
        (ask(base_url="http://h/v1"), "$.nodes[0].config.model", "required with base_url"),
        (
            ask(base_url="http://h/v1", model="m", api_key="sk-123"),
            "$.nodes[0].config.api_key",
            "must read a secret",
        ),
        (
            ask(base_url="http://h/v1", model="m", api_key="{{ inputs.key }}"),
            "$.nodes[0].config.api_key",
            "must read a secret",
        ),
        (
            ask(provider="local", temperature=9),
            "$.nodes[0].config.temperature",
            "less than or equal to 2",
        ),
        (ask(), "$.nodes[0].config", "name a `provider`"),
        (
            {
                "id": "ex",
                "type": "extract",
                "config": {"provider": "local", "input": "x", "schema": {"type": 5}},
            },
            "$.nodes[0].config.schema",
            "not a valid JSON Schema at $.type",
        ),
    ],
)
def test_a_wrong_node_is_reported_with_its_field(
    node: dict[str, Any], path: str, words: str
) -> None:
    found = issues(workflow(node))
    assert [(i.path, i.node_id) for i in found] == [(path, node["id"])], found
    assert words in found[0].message


def test_a_broken_configuration_file_is_reported_on_the_node() -> None:
    def broken() -> ProviderCatalog:
        raise ProviderConfigError("/etc/stepline.toml: providers.x.base_url: required")

    (found,) = issues(workflow(ask(provider="local")), broken)
    assert found.path == "$.nodes[0].config.provider"
    assert "the server's provider configuration is broken: /etc/stepline.toml" in found.message


def test_edges_branch_on_a_classifiers_categories() -> None:
    sort = {
        "id": "sort",
        "type": "classifier",
        "config": {
            "provider": "local",
            "input": "x",
            "categories": [{"name": "billing"}, {"name": "bug"}],
        },
    }
    end = {"id": "done", "type": "end", "config": {}}
    good = workflow(sort, end, edges=[{"from": "sort", "handle": "billing", "to": "done"}])
    assert issues(good) == []
    bad = workflow(sort, end, edges=[{"from": "sort", "handle": "bills", "to": "done"}])
    (found,) = issues(bad)
    assert found.path == "$.edges[0].handle"
    assert (
        "no output handle 'bills' (did you mean 'billing'?); its handles are: billing, bug"
        in found.message
    )


def test_may_read_secrets_tells_without_validating() -> None:
    registry = kinds()
    assert may_read_secrets(workflow(ask(provider="local")), registry)
    assert may_read_secrets(
        workflow({"id": "r", "type": "reshape", "config": {"output": "{{ secrets.X }}"}}), registry
    )
    loop = {
        "id": "l",
        "type": "for_each",
        "config": {"items": []},
        "body": {"nodes": [ask(provider="local")]},
    }
    assert may_read_secrets(workflow(loop), registry)
    assert not may_read_secrets(
        workflow({"id": "r", "type": "reshape", "config": {"output": 1}}), registry
    )
