"""The workflow catalog: creating, listing, renaming, deleting and duplicating workflows.

A workflow's name is unique among the live workflows of its workspace, or of its
organization for those of no workspace (the CLI and `save_workflow` find a workflow by
it); the database holds that rule, and each verb that names a workflow goes through
`workflow_names`, which turns a clash into WorkflowNameTakenError.

Deleting is soft: it sets `deleted_at`, and from then on the workflow is gone from every
listing and look-up by id or name, so its name is free again. Its versions and runs stay
in the database: a run pins its version, and one that was queued or running when the
workflow was deleted still finishes. They are no longer served under the workflow's path.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import WorkflowRecord, WorkflowVersion, utcnow
from stepline.store import mapping, queries
from stepline.store.base import StoreBase
from stepline.store.errors import WorkflowNameTakenError, WorkflowNotFoundError
from stepline.store.paging import Ordering, Page, read_page
from stepline.store.saved import SavedWorkflow, insert_workflow
from stepline.store.tables import steps, workflow_versions, workflows
from stepline.store.workflow_names import write_named

__all__ = ["MAX_NAME_LENGTH", "CatalogVerbs", "WorkflowNameTakenError"]


MAX_NAME_LENGTH = 200
"""As in the workflow spec: a name longer than this would not validate as a definition."""

_WORKFLOWS_ORDER = Ordering(
    "workflows", (workflows.c.created_at, workflows.c.id), ("datetime", "uuid"), descending=True
)
_VERSIONS_ORDER = Ordering("versions", (workflow_versions.c.version,), ("int",), descending=True)


def _live(organization_id: UUID) -> sa.ColumnElement[bool]:
    return sa.and_(workflows.c.organization_id == organization_id, workflows.c.deleted_at.is_(None))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a workflow name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a workflow name has at most {MAX_NAME_LENGTH} characters")
    return name


def _copy_names(name: str) -> Iterable[str]:
    """'<name> (copy)', '<name> (copy 2)', ...: each cut to fit the name length limit."""
    number = 1
    while True:
        suffix = " (copy)" if number == 1 else f" (copy {number})"
        yield name[: MAX_NAME_LENGTH - len(suffix)] + suffix
        number += 1


class CatalogVerbs(StoreBase):
    """Listing, creating, renaming, deleting and duplicating workflows; their versions."""

    async def create_workflow(
        self,
        organization_id: UUID,
        definition: dict[str, Any],
        *,
        workspace_id: UUID | None = None,
    ) -> SavedWorkflow:
        """A new workflow at version 1; WorkflowNameTakenError if its name is in use in
        the workspace (or among the organization's workflows of no workspace)."""
        name = _check_name(definition.get("name"))
        description = definition.get("description") or ""
        if not isinstance(description, str):
            raise ValueError("workflow definition: 'description' must be a string")

        def op(conn: sa.Connection) -> SavedWorkflow:
            insert = partial(
                insert_workflow, conn, organization_id, workspace_id, name, description, definition
            )
            return write_named(conn, organization_id, workspace_id, name, insert)

        return await self.writer.submit(op)

    async def page_workflows(
        self,
        organization_id: UUID,
        *,
        workspace_id: UUID | None = None,
        name: str | None = None,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[WorkflowRecord]:
        """The organization's live workflows, newest first; of one workspace or name if given.

        A name matches at most one live workflow per workspace (and one of no workspace):
        clients look a workflow up by name so, with the workspace.
        """
        query = sa.select(workflows).where(_live(organization_id))
        if workspace_id is not None:
            query = query.where(workflows.c.workspace_id == workspace_id)
        if name is not None:
            query = query.where(workflows.c.name == name)
        return await self._read(
            lambda conn: read_page(
                conn,
                query,
                _WORKFLOWS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=lambda row: (row["created_at"], row["id"]),
                item_of=mapping.row_to_workflow,
            )
        )

    async def latest_definitions(
        self, organization_id: UUID, workflows_: Iterable[WorkflowRecord]
    ) -> dict[UUID, dict[str, Any]]:
        """Each workflow's latest definition by workflow id, in one query (for a listing)."""
        wanted = {workflow.id: workflow.latest_version for workflow in workflows_}
        if not wanted:
            return {}
        query = sa.select(
            workflow_versions.c.workflow_id,
            workflow_versions.c.version,
            workflow_versions.c.definition,
        ).where(
            workflow_versions.c.organization_id == organization_id,
            workflow_versions.c.workflow_id.in_(list(wanted)),
        )
        # One version per workflow: a tuple IN is not portable, so filter the few extra rows.
        query = query.where(workflow_versions.c.version.in_(set(wanted.values())))

        def read(conn: sa.Connection) -> dict[UUID, dict[str, Any]]:
            return {
                workflow_id: definition
                for workflow_id, version, definition in conn.execute(query)
                if wanted[workflow_id] == version
            }

        return await self._read(read)

    async def patch_workflow(
        self,
        organization_id: UUID,
        workflow_id: UUID,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> WorkflowRecord:
        """Change the workflow's name or description; its versions stay as they are.

        WorkflowNotFoundError if it is not a live workflow of the organization;
        WorkflowNameTakenError if another live workflow of its workspace has the new name.
        """
        if name is not None:
            _check_name(name)
        if description is not None and not isinstance(description, str):
            raise ValueError("a workflow description must be a string")
        where = sa.and_(_live(organization_id), workflows.c.id == workflow_id)

        def op(conn: sa.Connection) -> WorkflowRecord:
            query = sa.select(workflows).where(where).with_for_update()
            current = conn.execute(query).mappings().first()
            if current is None:
                raise WorkflowNotFoundError(f"workflow {workflow_id} not found")
            changes: dict[str, Any] = {}
            if name is not None and name != current["name"]:
                changes["name"] = name
            if description is not None and description != current["description"]:
                changes["description"] = description
            if not changes:
                return mapping.row_to_workflow(current)
            changes["updated_at"] = utcnow()
            update = partial(
                conn.execute,
                workflows.update().where(workflows.c.id == workflow_id).values(changes),
            )
            if "name" in changes:
                workspace_id = current["workspace_id"]
                write_named(
                    conn,
                    organization_id,
                    workspace_id,
                    changes["name"],
                    update,
                    other_than=workflow_id,
                )
            else:
                update()
            return mapping.row_to_workflow(current).model_copy(update=changes)

        return await self.writer.submit(op)

    async def delete_workflow(self, organization_id: UUID, workflow_id: UUID) -> bool:
        """Soft-delete the workflow; False if it is not a live workflow of the organization."""
        where = sa.and_(_live(organization_id), workflows.c.id == workflow_id)
        now = utcnow()

        def op(conn: sa.Connection) -> bool:
            result = conn.execute(
                workflows.update().where(where).values(deleted_at=now, updated_at=now)
            )
            return result.rowcount == 1

        return await self.writer.submit(op)

    async def duplicate_workflow(
        self, organization_id: UUID, workflow_id: UUID, *, name: str | None = None
    ) -> SavedWorkflow:
        """A new workflow holding a copy of the latest definition, renamed.

        Without `name`, the copy is called '<name> (copy)', or '(copy 2)', ... if taken;
        a `name` that is taken in the original's workspace raises WorkflowNameTakenError.
        The copy starts at version 1, in the original's workspace, and its definition
        carries its own name.
        """
        if name is not None:
            _check_name(name)
        where = sa.and_(_live(organization_id), workflows.c.id == workflow_id)

        def op(conn: sa.Connection) -> SavedWorkflow:
            row = conn.execute(sa.select(workflows).where(where)).mappings().first()
            if row is None:
                raise WorkflowNotFoundError(f"workflow {workflow_id} not found")
            original = mapping.row_to_workflow(row)
            latest = conn.execute(
                queries.VERSION,
                {"workflow_id": workflow_id, "version": original.latest_version},
            ).mappings()
            definition = mapping.row_to_version(latest.one()).definition

            def insert(copy_name: str) -> SavedWorkflow:
                copy = partial(
                    insert_workflow,
                    conn,
                    organization_id,
                    original.workspace_id,
                    copy_name,
                    original.description,
                    {**definition, "name": copy_name},
                )
                return write_named(conn, organization_id, original.workspace_id, copy_name, copy)

            if name is not None:
                return insert(name)
            for candidate in _copy_names(original.name):
                try:
                    return insert(candidate)
                except WorkflowNameTakenError:
                    continue  # taken, maybe by a concurrent copy: the next number
            raise AssertionError("unreachable: the copy names never end")

        return await self.writer.submit(op)

    async def page_versions(
        self,
        organization_id: UUID,
        workflow_id: UUID,
        *,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[WorkflowVersion]:
        """The workflow's versions, newest first (the caller checks the workflow is live)."""
        query = sa.select(workflow_versions).where(
            workflow_versions.c.organization_id == organization_id,
            workflow_versions.c.workflow_id == workflow_id,
        )
        return await self._read(
            lambda conn: read_page(
                conn,
                query,
                _VERSIONS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=lambda row: (row["version"],),
                item_of=mapping.row_to_version,
            )
        )

    async def node_statuses(self, organization_id: UUID, run_id: UUID) -> dict[str, str]:
        """Each node's status in the run: its own step's, or its latest step's (loops).

        Reads three columns per step, so a diagram of a 10,000-step run stays cheap.
        """
        query = (
            sa.select(steps.c.node_id, steps.c.step_id, steps.c.status)
            .where(steps.c.run_id == run_id, steps.c.organization_id == organization_id)
            .order_by(steps.c.order_key, steps.c.step_id)
        )

        def read(conn: sa.Connection) -> dict[str, str]:
            statuses: dict[str, str] = {}
            own: set[str] = set()
            for node_id, step_id, status in conn.execute(query):
                if node_id in own:
                    continue
                statuses[node_id] = status
                if step_id == node_id:
                    own.add(node_id)
            return statuses

        return await self._read(read)
