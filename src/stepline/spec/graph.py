"""The workflow as a directed graph: who feeds whom, in which order, and what is upstream.

Built for 10,000-node workflows: every query is linear or better. Ancestor and descendant
sets are computed once per graph as bitsets over the topological order (one pass, one
integer per node), so "is `a` upstream of `b`" is a bit test and no query is quadratic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from stepline.errors import InvalidRequest
from stepline.spec.models import EdgeSpec, NodeSpec, WorkflowSpec


class GraphError(InvalidRequest, ValueError):
    """The nodes and edges do not form a usable graph."""


class GraphCycleError(GraphError):
    """The graph has a cycle, so it has no topological order."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("the workflow has a cycle: " + " -> ".join(cycle))
        self.cycle = cycle


class WorkflowGraph:
    """The nodes (in definition order) and edges of one workflow, with graph queries."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.nodes: dict[str, NodeSpec] = {}
        for node in spec.nodes:
            if node.id in self.nodes:
                raise GraphError(f"duplicate node id {node.id!r}")
            self.nodes[node.id] = node
        self.edges: list[EdgeSpec] = list(spec.edges)
        self._ids: list[str] = list(self.nodes)
        self._index: dict[str, int] = {node_id: i for i, node_id in enumerate(self._ids)}
        self._in: list[list[EdgeSpec]] = [[] for _ in self._ids]
        self._out: list[list[EdgeSpec]] = [[] for _ in self._ids]
        for position, edge in enumerate(self.edges):
            for end in (edge.source, edge.target):
                if end not in self._index:
                    raise GraphError(f"edges[{position}] names an unknown node {end!r}")
            self._out[self._index[edge.source]].append(edge)
            self._in[self._index[edge.target]].append(edge)
        self._order: list[str] | None = None
        self._ancestor_bits: list[int] | None = None
        self._descendant_bits: list[int] | None = None
        self._upstream: dict[str, frozenset[str]] = {}
        self._downstream: dict[str, frozenset[str]] = {}

    @classmethod
    def from_parts(cls, nodes: Iterable[NodeSpec], edges: Iterable[EdgeSpec]) -> WorkflowGraph:
        """A graph of some nodes and edges that need not form a whole valid workflow."""
        spec = WorkflowSpec.model_construct(name="", nodes=list(nodes), edges=list(edges))
        return cls(spec)

    # -- neighbours ----------------------------------------------------------------------

    def inbound(self, node_id: str) -> list[EdgeSpec]:
        """The edges into a node, in definition order."""
        return list(self._in[self._position(node_id)])

    def outbound(self, node_id: str) -> list[EdgeSpec]:
        """The edges out of a node, in definition order."""
        return list(self._out[self._position(node_id)])

    def roots(self) -> list[str]:
        """The nodes without inbound edges, in definition order."""
        return [node_id for i, node_id in enumerate(self._ids) if not self._in[i]]

    # -- order and cycles ------------------------------------------------------------------

    def topological_order(self) -> list[str]:
        """Every node after all its upstream nodes; ties keep definition order.

        Raises GraphCycleError (naming the cycle) when there is none.
        """
        if self._order is None:
            self._order = self._kahn()
        return list(self._order)

    def _kahn(self) -> list[str]:
        indegree = [len(edges) for edges in self._in]
        ready = [i for i, degree in enumerate(indegree) if degree == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            current = heapq.heappop(ready)
            order.append(self._ids[current])
            for edge in self._out[current]:
                target = self._index[edge.target]
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(ready, target)
        if len(order) < len(self._ids):
            raise GraphCycleError(self.find_cycle() or [])
        return order

    def find_cycle(self) -> list[str] | None:
        """One cycle as a path that returns to its start (`[a, b, a]`), or None."""
        successors = [[self._index[e.target] for e in edges] for edges in self._out]
        state = [0] * len(self._ids)  # 0 unseen, 1 on the current path, 2 finished
        for start in range(len(self._ids)):
            if state[start]:
                continue
            # Iterative depth-first search: a 10,000-node chain must not hit recursion limits.
            path = [start]
            cursors = [0]
            state[start] = 1
            while path:
                current = path[-1]
                if cursors[-1] == len(successors[current]):
                    state[current] = 2
                    path.pop()
                    cursors.pop()
                    continue
                following = successors[current][cursors[-1]]
                cursors[-1] += 1
                if state[following] == 1:
                    cycle = [*path[path.index(following) :], following]
                    return [self._ids[i] for i in cycle]
                if state[following] == 0:
                    state[following] = 1
                    path.append(following)
                    cursors.append(0)
        return None

    # -- reachability -----------------------------------------------------------------------

    def upstream(self, node_id: str) -> frozenset[str]:
        """Every node with a path to this one (its ancestors), not the node itself."""
        cached = self._upstream.get(node_id)
        if cached is None:
            cached = self._closure(node_id, ancestors=True)
            self._upstream[node_id] = cached
        return cached

    def downstream(self, node_id: str) -> frozenset[str]:
        """Every node this one has a path to (its descendants), not the node itself."""
        cached = self._downstream.get(node_id)
        if cached is None:
            cached = self._closure(node_id, ancestors=False)
            self._downstream[node_id] = cached
        return cached

    def is_upstream(self, ancestor: str, node_id: str) -> bool:
        """Whether `ancestor` has a path to `node_id`, in constant time once bitsets exist."""
        position = self._position(node_id)
        other = self._position(ancestor)
        bits = self._bits(ancestors=True)
        if bits is None:
            return ancestor in self.upstream(node_id)
        return bool(bits[position] >> other & 1)

    def _closure(self, node_id: str, *, ancestors: bool) -> frozenset[str]:
        position = self._position(node_id)
        bits = self._bits(ancestors=ancestors)
        if bits is not None:
            return frozenset(self._ids_of(bits[position]))
        return frozenset(self._ids[i] for i in self._search(position, ancestors=ancestors))

    def _bits(self, *, ancestors: bool) -> list[int] | None:
        """One bitset per node (bit i = node i of definition order), or None if cyclic."""
        cached = self._ancestor_bits if ancestors else self._descendant_bits
        if cached is not None:
            return cached
        try:
            order = self.topological_order()
        except GraphCycleError:
            return None
        bits = [0] * len(self._ids)
        if ancestors:
            for node_id in order:
                current = self._index[node_id]
                for edge in self._in[current]:
                    source = self._index[edge.source]
                    bits[current] |= bits[source] | (1 << source)
            self._ancestor_bits = bits
        else:
            for node_id in reversed(order):
                current = self._index[node_id]
                for edge in self._out[current]:
                    target = self._index[edge.target]
                    bits[current] |= bits[target] | (1 << target)
            self._descendant_bits = bits
        return bits

    def _ids_of(self, bits: int) -> list[str]:
        # Scanning the binary text finds set bits in linear time; peeling the lowest bit
        # off a big integer one at a time would be quadratic.
        text = bin(bits)[:1:-1]
        found: list[str] = []
        position = text.find("1")
        while position != -1:
            found.append(self._ids[position])
            position = text.find("1", position + 1)
        return found

    def _search(self, start: int, *, ancestors: bool) -> set[int]:
        """Nodes reachable from `start` by search; only used when a cycle rules out the bitsets."""
        adjacency = self._in if ancestors else self._out
        seen: set[int] = set()
        frontier = [start]
        while frontier:
            current = frontier.pop()
            for edge in adjacency[current]:
                following = self._index[edge.source if ancestors else edge.target]
                if following not in seen:
                    seen.add(following)
                    frontier.append(following)
        seen.discard(start)  # a node on a cycle reaches itself; it is not its own ancestor
        return seen

    def _position(self, node_id: str) -> int:
        try:
            return self._index[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id!r} in the workflow") from None
