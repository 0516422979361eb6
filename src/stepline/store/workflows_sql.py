"""The SQL of workflows and their versions (`stepline.store.workflows`).

`LOCK` is also taken by `runs` while it numbers a new run of the workflow.
"""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.paging import Ordering
from stepline.store.tables import workflow_versions, workflows
from stepline.store.types import UTCDateTime

_NOW = sa.bindparam("now", type_=UTCDateTime())

_LIVE = sa.and_(
    workflows.c.organization_id == sa.bindparam("organization_id"),
    workflows.c.deleted_at.is_(None),
)
BY_ID = sa.select(workflows).where(_LIVE, workflows.c.id == sa.bindparam("id"))
# PostgreSQL: lock the workflow row so that concurrent saves version it one after another.
BY_ID_FOR_UPDATE = BY_ID.with_for_update()
# A name is unique per workspace: prefer the caller's workspace, then no workspace.
_WORKSPACE_FIRST = sa.case(
    (workflows.c.workspace_id == sa.bindparam("workspace_id", type_=sa.Uuid()), 0),
    (workflows.c.workspace_id.is_(None), 1),
    else_=2,
)
BY_NAME = (
    sa.select(workflows)
    .where(_LIVE, workflows.c.name == sa.bindparam("name"))
    .order_by(_WORKSPACE_FIRST, workflows.c.created_at, workflows.c.id)
    .limit(1)
)
INSERT = workflows.insert()
NEW_VERSION = (
    workflows.update()
    .where(workflows.c.id == sa.bindparam("workflow_id"))
    .values(
        latest_version=sa.bindparam("new_version"),
        name=sa.bindparam("new_name"),
        description=sa.bindparam("new_description"),
        updated_at=_NOW,
    )
)
# The columns set are the keys of the parameters besides "workflow_id".
UPDATE = workflows.update().where(workflows.c.id == sa.bindparam("workflow_id"))
# Parameters named apart from the columns: an UPDATE reserves the columns' own names.
SOFT_DELETE = (
    workflows.update()
    .where(
        workflows.c.organization_id == sa.bindparam("in_organization"),
        workflows.c.id == sa.bindparam("workflow_id"),
        workflows.c.deleted_at.is_(None),
    )
    .values(deleted_at=_NOW, updated_at=_NOW)
)
# PostgreSQL: hold the workflow row while numbering its run, so two creators cannot both
# take the same number.
LOCK = (
    sa.select(workflows.c.id).where(workflows.c.id == sa.bindparam("workflow_id")).with_for_update()
)

ORDER = Ordering(
    "workflows", (workflows.c.created_at, workflows.c.id), ("datetime", "uuid"), descending=True
)
"""Newest first."""


def page(*, workspace: bool, name: bool) -> sa.Select[tuple[object, ...]]:
    """The base of a page of live workflows (`ORDER` orders and bounds it), of one
    workspace ("workspace_id") or name ("name") if asked."""
    query = sa.select(workflows).where(_LIVE)
    if workspace:
        query = query.where(workflows.c.workspace_id == sa.bindparam("workspace_id"))
    if name:
        query = query.where(workflows.c.name == sa.bindparam("name"))
    return query


VERSION = sa.select(workflow_versions).where(
    workflow_versions.c.workflow_id == sa.bindparam("workflow_id"),
    workflow_versions.c.version == sa.bindparam("version"),
)
# The same version without its definition: a save compares digests, and an unchanged
# definition is the caller's own, so the stored one need not be read and parsed.
VERSION_HEAD = sa.select(*(c for c in workflow_versions.c if c.name != "definition")).where(
    workflow_versions.c.workflow_id == sa.bindparam("workflow_id"),
    workflow_versions.c.version == sa.bindparam("version"),
)
VERSIONS = (
    sa.select(workflow_versions)
    .where(workflow_versions.c.workflow_id == sa.bindparam("workflow_id"))
    .order_by(workflow_versions.c.version)
)
INSERT_VERSION = workflow_versions.insert()
# The base of a page of a workflow's versions; `VERSIONS_ORDER` orders and bounds it.
PAGE_VERSIONS = sa.select(workflow_versions).where(
    workflow_versions.c.organization_id == sa.bindparam("organization_id"),
    workflow_versions.c.workflow_id == sa.bindparam("workflow_id"),
)
VERSIONS_ORDER = Ordering("versions", (workflow_versions.c.version,), ("int",), descending=True)
"""Newest first."""
# Some workflows' versions among some numbers: a tuple IN is not portable, so the caller
# keeps each workflow's own version of the few rows.
DEFINITIONS = sa.select(
    workflow_versions.c.workflow_id,
    workflow_versions.c.version,
    workflow_versions.c.definition,
).where(
    workflow_versions.c.organization_id == sa.bindparam("organization_id"),
    workflow_versions.c.workflow_id.in_(sa.bindparam("workflow_ids", expanding=True)),
    workflow_versions.c.version.in_(sa.bindparam("versions", expanding=True)),
)
