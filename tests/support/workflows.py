"""Workflow definitions the API and SDK tests share: nodes, edges, a review workflow."""

from __future__ import annotations

from typing import Any


def node(node_id: str, type: str, config: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type, "config": config, **options}


def edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"from": source, "to": target}
    if handle is not None:
        made["handle"] = handle
    return made


def hil_workflow(name: str, *, rejected_edge: bool = True) -> dict[str, Any]:
    """draft -> check (hil) -> publish; check --rejected--> redo when `rejected_edge`."""
    nodes = [
        node("draft", "reshape", {"output": {"text": "hello {{ inputs.name }}"}}),
        node(
            "check",
            "hil",
            {"payload": "{{ nodes.draft.output }}", "instructions": "Is the greeting right?"},
        ),
        node("publish", "reshape", {"output": {"published": "{{ nodes.check.output }}"}}),
    ]
    edges = [edge("draft", "check"), edge("check", "publish")]
    if rejected_edge:
        nodes.append(node("redo", "reshape", {"output": "redo {{ inputs.name }}"}))
        edges.append(edge("check", "redo", "rejected"))
    return {
        "name": name,
        "inputs": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
        "nodes": nodes,
        "edges": edges,
    }
