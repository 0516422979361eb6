"""Workflow names: unique among the live workflows of one scope, the database enforcing it.

A scope is one workspace of an organization, or the organization itself for its workflows
of no workspace. Two partial unique indexes hold the rule (`tables.workflows`) over live
rows only: deleting a workflow (soft, `deleted_at`) frees its name for a new one, and a
deleted workflow is never brought back, so it never needs the name again.

A verb that gives a workflow a name looks for the holder first, to name it in the error,
then writes in a savepoint. Two writers that both found the name free (PostgreSQL runs
their transactions at once; on SQLite the file's write lock already orders them) meet at
the index: the second waits for the first to commit, and its unique violation becomes
WorkflowNameTakenError naming the first, read once the savepoint is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import sqlalchemy as sa

from stepline.store.errors import ConstraintRefused, WorkflowNameTakenError
from stepline.store.tables import workflows

T = TypeVar("T")


def in_scope(organization_id: UUID, workspace_id: UUID | None) -> sa.ColumnElement[bool]:
    """The live workflows of the workspace (None: of the organization's, no workspace)."""
    workspace = (
        workflows.c.workspace_id.is_(None)
        if workspace_id is None
        else workflows.c.workspace_id == workspace_id
    )
    return sa.and_(
        workflows.c.organization_id == organization_id,
        workspace,
        workflows.c.deleted_at.is_(None),
    )


def holder_of(
    conn: sa.Connection,
    organization_id: UUID,
    workspace_id: UUID | None,
    name: str,
    *,
    other_than: UUID | None = None,
) -> UUID | None:
    """The id of the scope's live workflow called `name` (other than one), if any."""
    query = sa.select(workflows.c.id).where(
        in_scope(organization_id, workspace_id), workflows.c.name == name
    )
    if other_than is not None:
        query = query.where(workflows.c.id != other_than)
    holder: UUID | None = conn.execute(query).scalar()
    return holder


def named_for_update(
    conn: sa.Connection, organization_id: UUID, workspace_id: UUID | None, name: str
) -> sa.RowMapping | None:
    """The scope's live workflow called `name`, its row locked (PostgreSQL), if any."""
    query = sa.select(workflows).where(
        in_scope(organization_id, workspace_id), workflows.c.name == name
    )
    return conn.execute(query.with_for_update()).mappings().first()


def write_named(
    conn: sa.Connection,
    organization_id: UUID,
    workspace_id: UUID | None,
    name: str,
    write: Callable[[], T],
    *,
    other_than: UUID | None = None,
) -> T:
    """Run `write`, which gives a live workflow of the scope the name `name`.

    WorkflowNameTakenError if another workflow of the scope (not `other_than`, the one
    being renamed) has the name, or takes it while `write` runs.
    """
    holder = holder_of(conn, organization_id, workspace_id, name, other_than=other_than)
    if holder is not None:
        raise WorkflowNameTakenError(name, holder)
    try:
        with conn.begin_nested():
            return write()
    except ConstraintRefused:
        holder = holder_of(conn, organization_id, workspace_id, name, other_than=other_than)
        if holder is None:
            raise  # another constraint failed: not a name clash
        raise WorkflowNameTakenError(name, holder) from None
