"""Helpers for the store's tests: a workflow definition and records to put in the store."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from stepline.records import RunRecord, StepRecord
from stepline.store import mapping
from stepline.store.prepared import Prepared
from stepline.store.tables import steps as steps_table

DEFINITION = {
    "name": "summarize",
    "description": "fetch and summarize a page",
    "nodes": [{"id": "fetch", "type": "api_call"}, {"id": "sum", "type": "llm"}],
    "edges": [{"from": "fetch", "to": "sum"}],
}


@dataclass(frozen=True)
class Workflow:
    organization_id: UUID
    workflow_id: UUID
    version: int

    def run(self, **fields: object) -> RunRecord:
        defaults: dict[str, object] = {
            "workflow_id": self.workflow_id,
            "workflow_version": self.version,
            "organization_id": self.organization_id,
        }
        return RunRecord.model_validate({**defaults, **fields})


def new_step(run: RunRecord, seq: int, step_id: str | None = None, **fields: object) -> StepRecord:
    step_id = step_id or f"node{seq}"
    defaults: dict[str, object] = {
        "run_id": run.id,
        "workflow_id": run.workflow_id,
        "workflow_version": run.workflow_version,
        "organization_id": run.organization_id,
        "node_id": step_id,
        "step_id": step_id,
        "node_type": "code",
        "node_label": f"Node {seq}",
        "seq": seq,
    }
    return StepRecord.model_validate({**defaults, **fields})


_LEGACY_COLUMNS = tuple(c for c in mapping.STEP_COLUMNS if c != "order_key")
_INSERT_LEGACY_STEP = Prepared(steps_table.insert(), _LEGACY_COLUMNS)


def insert_legacy_steps(conn: sa.Connection, records: list[StepRecord]) -> None:
    """Insert steps as a database from before migration 0006 holds them (no order_key)."""
    rows = [mapping.step_to_row(step) for step in records]
    for row in rows:
        del row["order_key"]
    _INSERT_LEGACY_STEP.executemany(conn, rows)
