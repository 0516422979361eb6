"""How a finished node's result routes the graph: which edges are active, and who is ready.

Every edge starts unresolved. When its source settles the edge becomes active (the source
completed on the edge's handle), inactive (the source was skipped or chose another handle),
or failed (the source failed, or was skipped because something above it failed). A node is
decided once all its inbound edges are resolved: any failed edge skips it (upstream
failed), otherwise one active edge is enough to run it (a join after a branch), otherwise
it is skipped because no inbound path is active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from stepline.spec.graph import WorkflowGraph
from stepline.spec.models import EdgeSpec


class EdgeState(Enum):
    active = "active"
    inactive = "inactive"
    failed = "failed"


class Decision(Enum):
    run = "run"
    skip = "skip"
    skip_upstream_failed = "skip_upstream_failed"


@dataclass(frozen=True)
class Ready:
    """A node whose inbound edges are all resolved, with what to do about it."""

    node_id: str
    decision: Decision
    reason: str | None = None
    failed_origin: str | None = None
    """For a skip because something above failed: which node(s) failed."""


@dataclass
class Router:
    """Tracks edge states for one graph and yields nodes as they become decidable."""

    graph: WorkflowGraph
    _unresolved: dict[str, int] = field(init=False)
    _states: dict[str, list[tuple[EdgeSpec, EdgeState, str]]] = field(init=False)

    def __post_init__(self) -> None:
        self._unresolved = {nid: len(self.graph.inbound(nid)) for nid in self.graph.nodes}
        self._states = {nid: [] for nid in self.graph.nodes}

    def roots(self) -> list[Ready]:
        return [Ready(nid, Decision.run) for nid in self.graph.nodes if not self._unresolved[nid]]

    def completed(
        self, node_id: str, handle: str | None, *, exclusive: bool = False
    ) -> list[Ready]:
        """The node completed (or failed with on_error: continue) on `handle`.

        Edges without a handle follow the default output, which is active too unless
        `exclusive` (a rejected review takes only its `rejected` edges).
        """
        taken = f"'{node_id}' took {repr(handle) if handle else 'its default output'}"

        def rule(edge: EdgeSpec) -> tuple[EdgeState, str]:
            if edge.handle == handle or (edge.handle is None and not exclusive):
                return EdgeState.active, ""
            return EdgeState.inactive, taken

        return self._resolve(node_id, rule)

    def skipped(self, node_id: str) -> list[Ready]:
        return self._resolve(node_id, lambda _e: (EdgeState.inactive, f"'{node_id}' was skipped"))

    def failed(self, node_id: str, origin: str | None = None) -> list[Ready]:
        """The node failed the run, or (with `origin`) was skipped because `origin` did."""
        note = origin or node_id
        return self._resolve(node_id, lambda _e: (EdgeState.failed, note))

    def _resolve(
        self, node_id: str, rule: Callable[[EdgeSpec], tuple[EdgeState, str]]
    ) -> list[Ready]:
        ready: list[Ready] = []
        for edge in self.graph.outbound(node_id):
            target = edge.target
            self._states[target].append((edge, *rule(edge)))
            self._unresolved[target] -= 1
            if self._unresolved[target] == 0:
                ready.append(self._decide(target))
        return ready

    def _decide(self, node_id: str) -> Ready:
        states = self._states[node_id]
        failed = [note for _edge, state, note in states if state is EdgeState.failed]
        if failed:
            origin = _joined(failed)
            return Ready(
                node_id, Decision.skip_upstream_failed, f"upstream failed: {origin}", origin
            )
        if any(state is EdgeState.active for _edge, state, _note in states):
            return Ready(node_id, Decision.run)
        notes = _joined(note for _edge, _state, note in states)
        return Ready(node_id, Decision.skip, f"no active inbound path: {notes}")


def _joined(node_ids: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(node_ids))
