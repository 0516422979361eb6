"""A saved workflow, and writing a new one: shared by the workflows' `save`,
`create` and `duplicate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import WorkflowRecord, WorkflowVersion, utcnow
from stepline.spec.loader import definition_digest
from stepline.store import mapping
from stepline.store import workflows_sql as sql


@dataclass(frozen=True, slots=True)
class SavedWorkflow:
    """What `store.workflows.save` did: the workflow, its latest version, and whether it is new."""

    workflow: WorkflowRecord
    version: WorkflowVersion
    created_version: bool


def insert_workflow(
    conn: sa.Connection,
    organization_id: UUID,
    workspace_id: UUID | None,
    name: str,
    description: str,
    definition: dict[str, Any],
    digest: str | None = None,
) -> SavedWorkflow:
    """A new workflow with `definition` as its version 1 (`digest` when known already)."""
    now = utcnow()
    workflow = WorkflowRecord(
        organization_id=organization_id,
        workspace_id=workspace_id,
        name=name,
        description=description,
        latest_version=1,
        created_at=now,
        updated_at=now,
    )
    version = WorkflowVersion(
        workflow_id=workflow.id,
        version=1,
        definition=definition,
        digest=digest or definition_digest(definition),
        created_at=now,
    )
    conn.execute(sql.INSERT, mapping.workflow_to_row(workflow))
    conn.execute(sql.INSERT_VERSION, mapping.version_to_row(version, organization_id))
    return SavedWorkflow(workflow, version, True)
