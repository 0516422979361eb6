"""Workflow names unique in the database: per workspace, or per organization for the
workflows of no workspace, among live (not deleted) workflows.

Until now the store looked for a clash and then wrote, so two writers at once could both
take a name. A database that already holds such duplicates keeps the name on the oldest
workflow of each (earliest `created_at`, then id) and renames every later one
`<name> (2)`, `<name> (3)`, ... (the first number free in its scope, the name cut to fit
200 characters). Nothing is deleted: ids, versions and runs stay as they are, and each
rename is logged as a warning, so an operator can rename them back by hand.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from uuid import UUID

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("stepline.store.migrations")

MAX_NAME_LENGTH = 200
"""As stepline.store.catalog at this revision (not imported: history must not move)."""

_workflows = sa.table(
    "workflows",
    sa.column("id", sa.Uuid()),
    sa.column("organization_id", sa.Uuid()),
    sa.column("workspace_id", sa.Uuid()),
    sa.column("name", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("deleted_at", sa.DateTime(timezone=True)),
)
_LIVE = _workflows.c.deleted_at.is_(None)


def upgrade() -> None:
    _rename_duplicates(op.get_bind())
    op.create_index(
        "ix_workflows_organization_id_name_live",
        "workflows",
        ["organization_id", "name"],
        unique=True,
        sqlite_where=sa.text("workspace_id IS NULL AND deleted_at IS NULL"),
        postgresql_where=sa.text("workspace_id IS NULL AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_workflows_organization_id_workspace_id_name_live",
        "workflows",
        ["organization_id", "workspace_id", "name"],
        unique=True,
        sqlite_where=sa.text("workspace_id IS NOT NULL AND deleted_at IS NULL"),
        postgresql_where=sa.text("workspace_id IS NOT NULL AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    # The renamed workflows keep their new names: which one had a name first is not kept.
    op.drop_index("ix_workflows_organization_id_workspace_id_name_live", table_name="workflows")
    op.drop_index("ix_workflows_organization_id_name_live", table_name="workflows")


def _rename_duplicates(conn: sa.Connection) -> None:
    w = _workflows.c
    clashes = conn.execute(
        sa.select(w.organization_id, w.workspace_id, w.name)
        .where(_LIVE)
        .group_by(w.organization_id, w.workspace_id, w.name)
        .having(sa.func.count() > 1)
    ).all()
    for organization_id, workspace_id, name in clashes:
        scope = sa.and_(
            _LIVE,
            w.organization_id == organization_id,
            w.workspace_id.is_(None) if workspace_id is None else w.workspace_id == workspace_id,
        )
        ids = conn.execute(
            sa.select(w.id).where(scope, w.name == name).order_by(w.created_at, w.id)
        ).scalars()
        taken = set(conn.execute(sa.select(w.name).where(scope)).scalars())
        fresh = _free_names(name, taken)
        for workflow_id in list(ids)[1:]:
            new_name = next(fresh)
            conn.execute(_workflows.update().where(w.id == workflow_id).values(name=new_name))
            _log_rename(workflow_id, organization_id, workspace_id, name, new_name)


def _free_names(name: str, taken: set[str]) -> Iterator[str]:
    """'<name> (2)', '<name> (3)', ...: those not in `taken`, each cut to fit the limit."""
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: MAX_NAME_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            taken.add(candidate)
            yield candidate
        number += 1


def _log_rename(
    workflow_id: UUID, organization_id: UUID, workspace_id: UUID | None, old: str, new: str
) -> None:
    where = f"workspace {workspace_id}" if workspace_id is not None else "no workspace"
    log.warning(
        "workflow %s (organization %s, %s): renamed from %r to %r, as an older live "
        "workflow there has that name and names are now unique",
        workflow_id,
        organization_id,
        where,
        old,
        new,
    )
