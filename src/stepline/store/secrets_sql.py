"""The SQL of secrets (`stepline.store.secrets`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.tables import secrets_table as table

_RECORD_COLUMNS = (
    table.c.id,
    table.c.organization_id,
    table.c.workspace_id,
    table.c.name,
    table.c.created_at,
    table.c.updated_at,
)


def _in_place(scoped: bool) -> sa.ColumnElement[bool]:
    """The rows of one workspace's secrets (`scoped`), or of the organization's own."""
    where = table.c.organization_id == sa.bindparam("organization_id")
    if scoped:
        return sa.and_(where, table.c.workspace_id == sa.bindparam("workspace_id"))
    return sa.and_(where, table.c.workspace_id.is_(None))


# Each statement in two forms, keyed by whether a workspace is named.
LIST = {
    scoped: sa.select(*_RECORD_COLUMNS).where(_in_place(scoped)).order_by(table.c.name)
    for scoped in (False, True)
}
_NAMED = table.c.name == sa.bindparam("name")
FIND = {
    scoped: sa.select(*_RECORD_COLUMNS).where(_in_place(scoped), _NAMED) for scoped in (False, True)
}
DELETE = {scoped: table.delete().where(_in_place(scoped), _NAMED) for scoped in (False, True)}
REPLACE = (
    table.update()
    .where(table.c.id == sa.bindparam("secret_id"))
    .values(ciphertext=sa.bindparam("new_ciphertext"), updated_at=sa.bindparam("now"))
)
INSERT = table.insert()
# A run's secrets: the organization's and, for a run of a workspace, the workspace's.
CIPHERTEXTS = sa.select(table.c.name, table.c.workspace_id, table.c.ciphertext).where(
    table.c.organization_id == sa.bindparam("organization_id"),
    table.c.name.in_(sa.bindparam("names", expanding=True)),
    sa.or_(table.c.workspace_id.is_(None), table.c.workspace_id == sa.bindparam("workspace_id")),
)
