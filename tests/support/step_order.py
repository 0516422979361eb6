"""A workflow with a loop in a loop and top-level steps after them, and the order its
steps are listed in (the order it runs them), for the step-order tests of every surface."""

from __future__ import annotations

from typing import Any


def _reshape(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "reshape", "config": {"output": {"node": node_id}}}


def _for_each(node_id: str, items: list[int], nodes: list[dict[str, Any]], edges: list[Any]) -> Any:
    return {
        "id": node_id,
        "type": "for_each",
        "config": {"items": items},
        "body": {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]},
    }


OUTER, INNER = 2, 3
"""Iterations of the outer loop, and of the inner loop in each of them."""

# `last` is defined before `outer` but runs after it (topological order wins); `last` and
# `side` are both ready once their upstream is done: definition order breaks the tie.
NESTED_LOOPS: dict[str, Any] = {
    "name": "nested-loops",
    "nodes": [
        _reshape("start"),
        _reshape("last"),
        _for_each(
            "outer",
            list(range(OUTER)),
            [
                _reshape("pre"),
                _for_each("inner", list(range(INNER)), [_reshape("leaf")], []),
                _reshape("post"),
            ],
            [("pre", "inner"), ("inner", "post")],
        ),
        _reshape("side"),
    ],
    "edges": [
        {"from": "start", "to": "outer"},
        {"from": "outer", "to": "last"},
        {"from": "start", "to": "side"},
    ],
}

Frames = list[tuple[str, int]]


def _expected() -> list[tuple[str, str, Frames]]:
    steps: list[tuple[str, str, Frames]] = [("start", "start", []), ("outer", "outer", [])]
    for i in range(OUTER):
        prefix = f"outer_iter_{i}_"
        steps += [
            (prefix + "pre", "pre", [("outer", i)]),
            (prefix + "inner", "inner", [("outer", i)]),
        ]
        for j in range(INNER):
            steps.append((f"{prefix}inner_iter_{j}_leaf", "leaf", [("outer", i), ("inner", j)]))
        steps.append((prefix + "post", "post", [("outer", i)]))
    steps += [("last", "last", []), ("side", "side", [])]
    return steps


EXPECTED_STEPS = _expected()
"""(step_id, node_id, enclosing loops and iterations) of every step, in listing order."""

EXPECTED_ORDER = [step_id for step_id, _, _ in EXPECTED_STEPS]
"""The step_ids of a run of NESTED_LOOPS in the order they are listed."""


def _created() -> list[str]:
    created = ["start", "outer", "last", "side"]
    for i in range(OUTER):
        prefix = f"outer_iter_{i}_"
        created += [prefix + "pre", prefix + "inner", prefix + "post"]
        created += [f"{prefix}inner_iter_{j}_leaf" for j in range(INNER)]
    return created


CREATION_ORDER = _created()
"""The order the engine creates them in (`seq`): the top-level steps when the run starts,
each iteration's when it starts; the order they were listed in before migration 0006."""
