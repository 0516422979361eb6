"""Steps listed in execution order: `steps.order_key`, indexed with the run.

Until now steps were listed by `seq`, their creation order, so a loop's iterations (created
as they start) came after every top-level step, even those that ran after the loop. The
new column holds each step's place in the order the workflow runs its nodes (see
`stepline.step_order`): a path of numbers, the top-level node's position in the topological
order, then for a step inside a loop the iteration and the body node's position, and so on
for nested loops. Listings read `(run_id, order_key, step_id)`, one index range scan.

Existing steps get their key from their run's stored workflow version and their
`iteration_context` (the loops around them and their iterations), computed here with the
same rules as the engine (a copy: history must not move). A step that cannot be placed (its
version or node is not to be found) sorts after the rest of its run, by `seq`.

The old `(run_id, seq, step_id)` index goes: nothing sorts by `seq` any more.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("stepline.store.migrations")

BATCH = 5000
UNPLACED = "z"
"""As stepline.step_order at this revision: sorts after every key."""

_steps = sa.table(
    "steps",
    sa.column("id", sa.Uuid()),
    sa.column("workflow_id", sa.Uuid()),
    sa.column("workflow_version", sa.Integer()),
    sa.column("node_id", sa.Text()),
    sa.column("seq", sa.Integer()),
    sa.column("loop_id", sa.Text()),
    sa.column("iteration", sa.Integer()),
    sa.column("iteration_context", sa.Text()),
    sa.column("order_key", sa.Text()),
)
_versions = sa.table(
    "workflow_versions",
    sa.column("workflow_id", sa.Uuid()),
    sa.column("version", sa.Integer()),
    sa.column("definition", sa.Text()),
)


def upgrade() -> None:
    bind = op.get_bind()
    order_key_type = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    op.add_column(
        "steps",
        sa.Column("order_key", order_key_type, nullable=False, server_default=""),
    )
    _backfill(bind)
    op.drop_index("ix_steps_run_id_seq_step_id", table_name="steps")
    op.create_index(
        "ix_steps_run_id_order_key_step_id", "steps", ["run_id", "order_key", "step_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_steps_run_id_order_key_step_id", table_name="steps")
    op.create_index("ix_steps_run_id_seq_step_id", "steps", ["run_id", "seq", "step_id"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("ALTER TABLE steps DROP COLUMN order_key")
    else:
        op.drop_column("steps", "order_key")


# --- the keys (as stepline.step_order at this revision) ---------------------------------------


def _component(number: int) -> str:
    digits = f"{number:x}"
    return f"{len(digits) - 1:x}{digits}"


def _text(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """A JSON column as its text (jsonb cast on PostgreSQL; TEXT already on SQLite)."""
    return column if dialect == "sqlite" else sa.cast(column, sa.Text)


class _Graph:
    """One graph of a stored definition (the workflow, or a loop's body): each node's
    position in its topological order (ties keep definition order), and each node's body."""

    def __init__(self, document: Any) -> None:
        nodes = document.get("nodes") if isinstance(document, dict) else None
        nodes = [n for n in nodes or [] if isinstance(n, dict) and isinstance(n.get("id"), str)]
        ids = [n["id"] for n in nodes]
        index = {node_id: i for i, node_id in enumerate(ids)}
        outbound: list[list[int]] = [[] for _ in ids]
        indegree = [0] * len(ids)
        for edge in document.get("edges") or [] if isinstance(document, dict) else []:
            if not isinstance(edge, dict):
                continue
            source = edge.get("from", edge.get("source"))
            target = edge.get("to", edge.get("target"))
            if source in index and target in index:
                outbound[index[source]].append(index[target])
                indegree[index[target]] += 1
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
        self._graphs: dict[str, _Graph] = {}

    def body(self, node_id: str) -> _Graph | None:
        if node_id not in self._graphs:
            body = self._bodies.get(node_id)
            if not isinstance(body, dict):
                return None
            self._graphs[node_id] = _Graph(body)
        return self._graphs[node_id]


def _frames(context_text: str | None, loop_id: str | None, iteration: int | None) -> list[Any]:
    """The (container_id, iteration) of the loops around a step, outermost first."""
    if context_text:
        try:
            context = json.loads(context_text)
        except ValueError:
            context = None
        frames = context.get("frames") if isinstance(context, dict) else None
        if isinstance(frames, list) and frames:
            return [
                (f.get("container_id"), f.get("iteration")) for f in frames if isinstance(f, dict)
            ]
    if loop_id is not None and iteration is not None:
        return [(loop_id, iteration)]
    return []


def _key(graph: _Graph | None, node_id: str, frames: list[Any]) -> str | None:
    key = ""
    for container_id, iteration in frames:
        if graph is None or container_id not in graph.position:
            return None
        if not isinstance(iteration, int) or iteration < 0:
            return None
        key += _component(graph.position[container_id]) + _component(iteration)
        graph = graph.body(container_id)
    if graph is None or node_id not in graph.position:
        return None
    return key + _component(graph.position[node_id])


def _backfill(bind: sa.Connection) -> None:
    dialect = bind.dialect.name
    graphs: dict[tuple[UUID, int], _Graph | None] = {}

    def graph_of(workflow_id: UUID, version: int) -> _Graph | None:
        if (workflow_id, version) not in graphs:
            text = bind.execute(
                sa.select(_text(_versions.c.definition, dialect)).where(
                    _versions.c.workflow_id == workflow_id, _versions.c.version == version
                )
            ).scalar()
            try:
                graphs[workflow_id, version] = None if text is None else _Graph(json.loads(text))
            except ValueError:
                graphs[workflow_id, version] = None
        return graphs[workflow_id, version]

    query = sa.select(
        _steps.c.id,
        _steps.c.workflow_id,
        _steps.c.workflow_version,
        _steps.c.node_id,
        _steps.c.seq,
        _steps.c.loop_id,
        _steps.c.iteration,
        _text(_steps.c.iteration_context, dialect),
    ).order_by(_steps.c.id)
    update = (
        sa.update(_steps)
        .where(_steps.c.id == sa.bindparam("step_uuid"))
        .values(order_key=sa.bindparam("key"))
    )
    last: UUID | None = None
    unplaced = 0
    while True:
        page = query if last is None else query.where(_steps.c.id > last)
        rows = bind.execute(page.limit(BATCH)).all()
        if not rows:
            break
        keys = []
        for step_uuid, workflow_id, version, node_id, seq, loop_id, iteration, context in rows:
            graph = graph_of(workflow_id, version)
            key = _key(graph, node_id, _frames(context, loop_id, iteration))
            if key is None:
                unplaced += 1
                key = UNPLACED + _component(max(seq, 0))
            keys.append({"step_uuid": step_uuid, "key": key})
        bind.execute(update, keys)
        last = rows[-1][0]
    if unplaced:
        log.warning("%d steps could not be placed in their run's order: listed last", unplaced)
