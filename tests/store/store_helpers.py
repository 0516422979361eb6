"""Helpers for the store's tests: a workflow definition and records to put in the store."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from stepline.records import RunRecord, StepRecord
from stepline.store import mapping
from stepline.store.prepared import Prepared
from stepline.store.tables import runs as runs_table
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


DOCUMENT_COLUMNS = ("input_document", "output_document", "split_documents")
"""The step columns migration 0009 adds."""


def insert_legacy_steps(
    conn: sa.Connection,
    records: list[StepRecord],
    *,
    missing: tuple[str, ...] = ("order_key", *DOCUMENT_COLUMNS),
) -> None:
    """Insert steps as an older schema holds them: without the `missing` columns (by
    default, as a database from before migration 0006 holds them)."""
    columns = tuple(c for c in mapping.STEP_COLUMNS if c not in missing)
    rows = [{c: row[c] for c in columns} for row in map(mapping.step_to_row, records)]
    Prepared(steps_table.insert(), columns).executemany(conn, rows)


RUN_COLUMNS_SINCE_0012 = ("concurrency_limit",)
"""The run columns migration 0012 adds."""


def insert_legacy_run(conn: sa.Connection, run: RunRecord) -> RunRecord:
    """Insert a run (its workflow's first) as a schema from before migration 0012 holds it."""
    numbered = run.model_copy(update={"run_number": 1})
    row = mapping.run_to_row(numbered)
    columns = [c for c in mapping.RUN_COLUMNS if c not in RUN_COLUMNS_SINCE_0012]
    conn.execute(runs_table.insert(), [{c: row[c] for c in columns}])
    return numbered
