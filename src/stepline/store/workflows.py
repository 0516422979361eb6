"""Workflows and their versions: saving a definition as a new version, and the catalog
(creating, listing, renaming, deleting and duplicating workflows).

A workflow's name is unique among the live workflows of its workspace, or of its
organization for those of no workspace (the CLI and `save` find a workflow by it); the
database holds that rule, and each verb that names a workflow goes through
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
from stepline.spec.loader import definition_digest
from stepline.store import mapping
from stepline.store import workflows_sql as sql
from stepline.store.errors import WorkflowNameTakenError, WorkflowNotFoundError
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository
from stepline.store.saved import SavedWorkflow, insert_workflow
from stepline.store.workflow_names import named_for_update, write_named

MAX_NAME_LENGTH = 200
"""As in the workflow spec: a name longer than this would not validate as a definition."""


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


class WorkflowRepository(Repository):
    """Saving, creating, finding, listing, renaming, deleting and duplicating workflows;
    reading their versions."""

    async def save(
        self,
        organization_id: UUID,
        definition: dict[str, Any],
        *,
        workflow_id: UUID | None = None,
        workspace_id: UUID | None = None,
    ) -> SavedWorkflow:
        """Store a definition as the workflow's next version, unless it is the latest already.

        Without `workflow_id`, the live workflow of the definition's name in `workspace_id`
        (None: the organization's, of no workspace) is updated, or a new workflow is
        created there. With it, that workflow must exist, and a new name in the definition
        renames it: WorkflowNameTakenError if another workflow of its workspace has it.
        """
        name = definition.get("name") if isinstance(definition, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ValueError("workflow definition: 'name' must be a non-empty string")
        description = definition.get("description") or ""
        if not isinstance(description, str):
            raise ValueError("workflow definition: 'description' must be a string")
        digest = definition_digest(definition)

        def op(conn: sa.Connection) -> SavedWorkflow:
            now = utcnow()
            params: dict[str, Any]
            if workflow_id is not None:
                params = {"organization_id": organization_id, "id": workflow_id}
                row = conn.execute(sql.BY_ID_FOR_UPDATE, params).mappings().first()
                if row is None:
                    raise WorkflowNotFoundError(
                        f"workflow {workflow_id} not found in organization {organization_id}"
                    )
            else:
                row = named_for_update(conn, organization_id, workspace_id, name)
                if row is None:
                    create = partial(
                        insert_workflow,
                        conn,
                        organization_id,
                        workspace_id,
                        name,
                        description,
                        definition,
                        digest,
                    )
                    try:
                        return write_named(conn, organization_id, workspace_id, name, create)
                    except WorkflowNameTakenError:
                        # Another writer created it since we looked: this is its next version.
                        row = named_for_update(conn, organization_id, workspace_id, name)
                        if row is None:
                            raise
            workflow = mapping.row_to_workflow(row)
            latest_row = (
                conn.execute(
                    sql.VERSION_HEAD,
                    {"workflow_id": workflow.id, "version": workflow.latest_version},
                )
                .mappings()
                .one()
            )
            if latest_row["digest"] == digest:
                latest = mapping.row_to_version({**latest_row, "definition": definition})
                return SavedWorkflow(workflow, latest, False)
            version = WorkflowVersion(
                workflow_id=workflow.id,
                version=workflow.latest_version + 1,
                definition=definition,
                digest=digest,
                created_at=now,
            )

            def write() -> None:
                conn.execute(sql.INSERT_VERSION, mapping.version_to_row(version, organization_id))
                conn.execute(
                    sql.NEW_VERSION,
                    {
                        "workflow_id": workflow.id,
                        "new_version": version.version,
                        "new_name": name,
                        "new_description": description,
                        "now": now,
                    },
                )

            if name == workflow.name:
                write()
            else:
                write_named(
                    conn,
                    organization_id,
                    workflow.workspace_id,
                    name,
                    write,
                    other_than=workflow.id,
                )
            workflow = workflow.model_copy(
                update={
                    "latest_version": version.version,
                    "name": name,
                    "description": description,
                    "updated_at": now,
                }
            )
            return SavedWorkflow(workflow, version, True)

        return await self._write(op)

    async def create(
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

        return await self._write(op)

    async def get(self, organization_id: UUID, workflow_id: UUID) -> WorkflowRecord | None:
        """The organization's live workflow of that id, else None."""
        params = {"organization_id": organization_id, "id": workflow_id}

        def read(conn: sa.Connection) -> WorkflowRecord | None:
            row = conn.execute(sql.BY_ID, params).mappings().first()
            return None if row is None else mapping.row_to_workflow(row)

        return await self._read(read)

    async def find(
        self, organization_id: UUID, name: str, *, workspace_id: UUID | None = None
    ) -> WorkflowRecord | None:
        """The organization's live workflow called `name`, if any: the one of `workspace_id`
        (None: of no workspace) if there is one, else the one of no workspace, else the
        oldest (names are unique per workspace, not across them)."""
        params = {"organization_id": organization_id, "name": name, "workspace_id": workspace_id}

        def read(conn: sa.Connection) -> WorkflowRecord | None:
            row = conn.execute(sql.BY_NAME, params).mappings().first()
            return None if row is None else mapping.row_to_workflow(row)

        return await self._read(read)

    async def page(
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
        query = sql.page(workspace=workspace_id is not None, name=name is not None)
        params = {"organization_id": organization_id, "workspace_id": workspace_id, "name": name}
        return await self._read(
            lambda conn: read_page(
                conn,
                query,
                sql.ORDER,
                limit=limit,
                after=after,
                before=before,
                params=params,
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
        params = {
            "organization_id": organization_id,
            "workflow_ids": list(wanted),
            "versions": sorted(set(wanted.values())),
        }

        def read(conn: sa.Connection) -> dict[UUID, dict[str, Any]]:
            return {
                workflow_id: definition
                for workflow_id, version, definition in conn.execute(sql.DEFINITIONS, params)
                if wanted[workflow_id] == version
            }

        return await self._read(read)

    async def patch(
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
        params = {"organization_id": organization_id, "id": workflow_id}

        def op(conn: sa.Connection) -> WorkflowRecord:
            current = conn.execute(sql.BY_ID_FOR_UPDATE, params).mappings().first()
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
            update = partial(conn.execute, sql.UPDATE, {"workflow_id": workflow_id, **changes})
            if "name" in changes:
                write_named(
                    conn,
                    organization_id,
                    current["workspace_id"],
                    changes["name"],
                    update,
                    other_than=workflow_id,
                )
            else:
                update()
            return mapping.row_to_workflow(current).model_copy(update=changes)

        return await self._write(op)

    async def delete(self, organization_id: UUID, workflow_id: UUID) -> bool:
        """Soft-delete the workflow; False if it is not a live workflow of the organization."""
        params = {"in_organization": organization_id, "workflow_id": workflow_id, "now": utcnow()}
        return await self._write(lambda conn: conn.execute(sql.SOFT_DELETE, params).rowcount == 1)

    async def duplicate(
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
        params = {"organization_id": organization_id, "id": workflow_id}

        def op(conn: sa.Connection) -> SavedWorkflow:
            row = conn.execute(sql.BY_ID, params).mappings().first()
            if row is None:
                raise WorkflowNotFoundError(f"workflow {workflow_id} not found")
            original = mapping.row_to_workflow(row)
            latest = conn.execute(
                sql.VERSION,
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

        return await self._write(op)

    async def version(self, workflow_id: UUID, version: int) -> WorkflowVersion | None:
        """The workflow's version of that number, if any."""
        params = {"workflow_id": workflow_id, "version": version}

        def read(conn: sa.Connection) -> WorkflowVersion | None:
            row = conn.execute(sql.VERSION, params).mappings().first()
            return None if row is None else mapping.row_to_version(row)

        return await self._read(read)

    async def versions(self, workflow_id: UUID) -> list[WorkflowVersion]:
        """Every version of the workflow, oldest first."""

        def read(conn: sa.Connection) -> list[WorkflowVersion]:
            rows = conn.execute(sql.VERSIONS, {"workflow_id": workflow_id}).mappings()
            return [mapping.row_to_version(row) for row in rows]

        return await self._read(read)

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
        params = {"organization_id": organization_id, "workflow_id": workflow_id}
        return await self._read(
            lambda conn: read_page(
                conn,
                sql.PAGE_VERSIONS,
                sql.VERSIONS_ORDER,
                limit=limit,
                after=after,
                before=before,
                params=params,
                key_of=lambda row: (row["version"],),
                item_of=mapping.row_to_version,
            )
        )
