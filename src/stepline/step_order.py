"""Where a step sorts in its run: the order the workflow runs its nodes, as a text key.

A step's `order_key` is a path of numbers, each written as one self-delimiting component,
so that comparing two keys as plain byte strings compares their paths number by number:

- a top-level step: its node's position in the workflow's topological order (ties keep
  definition order, `WorkflowGraph.topological_order`);
- a step of iteration `i` of a loop step whose key is `K`: `K`, then `i`, then its node's
  position in the topological order of the loop's body. Nested loops chain the same way.

So a loop step comes right before its iterations (its key is a prefix of theirs), the
iterations follow in iteration order, each one's steps in their body's topological order,
and the top-level steps after the loop come after all of them. A retried step stays one
record and keeps its key. Keys are assigned when a step is created and never change.

A component is one hex digit giving the number of hex digits that follow, minus one,
then those digits (lower-case): 0 is `00`, 15 is `0f`, 16 is `110`, 256 is `2100`; up to
16 digits (any 64-bit number). Keys hold only `[0-9a-f]`, so they sort the same under any
collation (the column is declared `COLLATE "C"` on PostgreSQL all the same).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

MAX_COMPONENT = 16**16 - 1
UNPLACED = "z"
"""Sorts after every key: the prefix of the keys migration 0006 could not place (then
their creation order, `seq`), so that they come last rather than anywhere."""


def component(number: int) -> str:
    """One number of a key's path (order-preserving, self-delimiting)."""
    if not 0 <= number <= MAX_COMPONENT:
        raise ValueError(f"an order key component must be in [0, 16**16), got {number}")
    digits = f"{number:x}"
    return f"{len(digits) - 1:x}{digits}"


def order_key(*path: int) -> str:
    """The key of a path of numbers (see the module's docstring)."""
    return "".join(component(number) for number in path)


def child_key(parent: str, iteration: int, position: int) -> str:
    """The key of the step at `position` of iteration `iteration` of the loop at `parent`."""
    return parent + component(iteration) + component(position)


def iteration_base(parent: str, iteration: int) -> str:
    """What every step of one iteration's key starts with."""
    return parent + component(iteration)


def seq_key(seq: int) -> str:
    """The key of a step that gives none: its creation order (`seq`) alone."""
    return component(seq)


def decode(key: str) -> list[int]:
    """The path of a key (ValueError if it is not one)."""
    path: list[int] = []
    i = 0
    while i < len(key):
        width = int(key[i], 16) + 1
        digits = key[i + 1 : i + 1 + width]
        if len(digits) != width:
            raise ValueError(f"truncated order key {key!r}")
        path.append(int(digits, 16))
        i += 1 + width
    return path


def positions(order: Iterable[str]) -> dict[str, int]:
    """Each node's position in a topological order."""
    return {node_id: i for i, node_id in enumerate(order)}


class DefinitionOrder:
    """The keys of one stored workflow definition's steps, from the definition as stored
    (a JSON document: `nodes` with `id` and `body`, `edges` with `from`/`to`), with the
    engine's rules; for steps not created by the engine from it (a replay's copies)."""

    def __init__(self, document: Any) -> None:
        nodes = document.get("nodes") if isinstance(document, dict) else None
        nodes = [n for n in nodes or [] if isinstance(n, dict) and isinstance(n.get("id"), str)]
        ids = [n["id"] for n in nodes]
        index = {node_id: i for i, node_id in enumerate(ids)}
        outbound: list[list[int]] = [[] for _ in ids]
        indegree = [0] * len(ids)
        edges = document.get("edges") if isinstance(document, dict) else None
        for edge in edges or []:
            if not isinstance(edge, dict):
                continue
            source = edge.get("from", edge.get("source"))
            target = edge.get("to", edge.get("target"))
            if source in index and target in index:
                outbound[index[source]].append(index[target])
                indegree[index[target]] += 1
        # Kahn's algorithm, ties in definition order (as WorkflowGraph.topological_order).
        ready = [i for i, degree in enumerate(indegree) if degree == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            current = heapq.heappop(ready)
            order.append(current)
            for target in outbound[current]:
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(ready, target)
        placed = set(order)
        order += [i for i in range(len(ids)) if i not in placed]  # a cycle: definition order
        self.position = {ids[i]: p for p, i in enumerate(order)}
        self._bodies = {n["id"]: n.get("body") for n in nodes}
        self._inner: dict[str, DefinitionOrder | None] = {}

    def body(self, node_id: str) -> DefinitionOrder | None:
        """The order of a container node's body (None if it has none)."""
        if node_id not in self._inner:
            body = self._bodies.get(node_id)
            self._inner[node_id] = DefinitionOrder(body) if isinstance(body, dict) else None
        return self._inner[node_id]

    def key(self, node_id: str, frames: Sequence[tuple[str, int]]) -> str | None:
        """The key of the step of `node_id` inside the loops `frames` (container id and
        iteration, outermost first); None if the definition has no such place."""
        order: DefinitionOrder | None = self
        key = ""
        for container_id, iteration in frames:
            if order is None or container_id not in order.position or iteration < 0:
                return None
            key += component(order.position[container_id]) + component(iteration)
            order = order.body(container_id)
        if order is None or node_id not in order.position:
            return None
        return key + component(order.position[node_id])
