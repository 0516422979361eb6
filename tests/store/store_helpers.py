"""Helpers for the store's tests: a workflow definition and records to put in the store."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from stepline.records import RunRecord, StepRecord

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
