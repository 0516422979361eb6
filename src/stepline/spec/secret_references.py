"""Which secrets a workflow reads: found by validation, or guessed without validating."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic_core

if TYPE_CHECKING:
    from stepline.spec.models import WorkflowSpec


@dataclass(frozen=True)
class SecretReference:
    """A node reads secret `name` at `path` (its JSON path in the workflow document)."""

    name: str
    node_id: str | None
    path: str


def secret_references(spec: WorkflowSpec) -> tuple[SecretReference, ...]:
    """Every `secrets.NAME` the validated workflow's nodes read, in document order."""
    return spec._secret_references


def may_read_secrets(definition: Mapping[str, Any], kinds: Mapping[str, Any]) -> bool:
    """Whether validating `definition` may find secrets it reads: it says `secrets`
    somewhere, or has a node (at any depth) of a kind that reads secrets of its own
    configuration (`configured_secrets`, e.g. a model node's provider key). False tells,
    without validating, that a run of it needs no secret."""
    if b"secrets" in pydantic_core.to_json(definition):
        return True
    return any(
        getattr(kinds.get(node_type), "configured_secrets", None) is not None
        for node_type in _node_types(definition.get("nodes"))
    )


def _node_types(nodes: Any) -> Iterable[str]:
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, Mapping):
            if isinstance(node.get("type"), str):
                yield node["type"]
            body = node.get("body")
            if isinstance(body, Mapping):
                yield from _node_types(body.get("nodes"))
