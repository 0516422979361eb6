"""A stepline workflow definition seen as Arcee Orchestra's workflow graph: nodes by id,
edges as `[from, to]` pairs from `START` and to `END`, the entry and finish points.

Definitions come from the store, validated when they were saved; these functions still
read them defensively (a value of an unexpected type is left out, never an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

START = "START"
END = "END"


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    type: str
    label: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    handle: str | None = None


@dataclass(frozen=True, slots=True)
class Graph:
    """One level of a definition (the workflow, or a loop's body)."""

    nodes: list[Node]
    edges: list[Edge]

    @property
    def entries(self) -> list[str]:
        """The nodes nothing leads to, in definition order: where a run starts."""
        targets = {edge.target for edge in self.edges}
        return [node.id for node in self.nodes if node.id not in targets]

    @property
    def finishes(self) -> list[str]:
        """The `end` nodes, else the nodes without successors (whose outputs end a run)."""
        ends = [node.id for node in self.nodes if node.type == "end"]
        if ends:
            return ends
        sources = {edge.source for edge in self.edges}
        return [node.id for node in self.nodes if node.id not in sources]


def graph_of(definition: Mapping[str, Any]) -> Graph:
    """The definition's top level (a loop's body: `graph_of(node.raw["body"])`)."""
    nodes = [
        Node(
            id=str(node.get("id")),
            type=str(node.get("type")),
            label=str(node.get("label") or node.get("id")),
            raw=node,
        )
        for node in _dicts(definition.get("nodes"))
    ]
    edges = [
        Edge(
            str(edge.get("from")),
            str(edge.get("to")),
            None if edge.get("handle") is None else str(edge.get("handle")),
        )
        for edge in _dicts(definition.get("edges"))
    ]
    return Graph(nodes, edges)


def body_of(node: Node) -> Graph | None:
    """A loop's body, None for any other node."""
    body = node.raw.get("body")
    return graph_of(body) if isinstance(body, Mapping) else None


def arcee_graph(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The `graph` of an item of Arcee's `GET /workflows`."""
    graph = graph_of(definition)
    finishes = graph.finishes
    edges = [[START, entry] for entry in graph.entries]
    edges += [[edge.source, edge.target] for edge in graph.edges]
    edges += [[finish, END] for finish in finishes]
    entries = graph.entries
    return {
        "settings": {"support_multiple_edges": True},
        "input_data": input_defaults(definition.get("inputs")),
        "description": str(definition.get("description") or ""),
        "nodes": {node.id: _arcee_node(node) for node in graph.nodes},
        "edges": edges,
        "entry_point": entries[0] if entries else None,
        "finish_point": finishes[0] if finishes else None,
        # The node whose output is the run's: none when several finishes each give theirs.
        "selectedOutput": finishes[0] if len(finishes) == 1 else None,
        "node_metadata": None,
    }


def input_defaults(schema: Any) -> dict[str, Any]:
    """Each input the workflow declares, with its default (null when it has none)."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return {}
    return {
        str(name): prop.get("default") if isinstance(prop, Mapping) else None
        for name, prop in properties.items()
    }


def _arcee_node(node: Node) -> dict[str, Any]:
    config = node.raw.get("config")
    metadata: dict[str, Any] = {"description": str(node.raw.get("description") or node.label)}
    if isinstance(config, Mapping):
        metadata |= config
    body = node.raw.get("body")
    if isinstance(body, Mapping):
        metadata["body"] = body
    return {"type": node.type, "metadata": metadata}


def _dicts(items: Any) -> list[Mapping[str, Any]]:
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []
