"""A run's head: what its reads need to know of it (who may see it, what it is), read
without its step counts; both `runs.head` and the steps' JSON pages check it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from stepline.records import RunStatus
from stepline.store.step_json import HeadRow, sqlite_run_head
from stepline.store.tables import runs


@dataclass(frozen=True, slots=True)
class RunHead:
    """What a run's reads need to know of it: who may see it, what it is; no step counts."""

    id: UUID
    workflow_id: UUID
    workflow_version: int
    workspace_id: UUID | None
    status: RunStatus

    def visible(self, workflow_id: UUID | None, workspace_id: UUID | None) -> bool:
        """Is it a run of `workflow_id` (when given) seen from `workspace_id` (when given)?"""
        return (workflow_id is None or self.workflow_id == workflow_id) and (
            workspace_id is None or self.workspace_id == workspace_id
        )


_HEAD = sa.select(
    runs.c.id, runs.c.workflow_id, runs.c.workflow_version, runs.c.workspace_id, runs.c.status
).where(
    runs.c.id == sa.bindparam("run_id"),
    runs.c.organization_id == sa.bindparam("organization_id"),
)


def read_head(conn: sa.Connection, organization_id: UUID, run_id: UUID) -> RunHead | None:
    """The organization's run's head, if there is such a run."""
    row = conn.execute(_HEAD, {"run_id": run_id, "organization_id": organization_id}).first()
    if row is None:
        return None
    return RunHead(row[0], row[1], row[2], row[3], RunStatus(row[4]))


def read_driver_head(
    conn: sqlite3.Connection, organization_id: UUID, run_id: UUID
) -> RunHead | None:
    """`read_head` straight on SQLite's driver."""
    return head_of(run_id, sqlite_run_head(conn, organization_id, run_id))


def head_of(run_id: UUID, found: HeadRow | None) -> RunHead | None:
    """The head of a row `step_json` read (None: no such run)."""
    if found is None:
        return None
    workflow_id, workspace_id, version, status = found
    return RunHead(run_id, workflow_id, version, workspace_id, status)
