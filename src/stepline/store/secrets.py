"""Secrets as stored: names, times and ciphertexts, per organization and workspace.

The store never sees a value: the caller (`stepline.secrets.vault`) encrypts before a
write and decrypts after a read. A secret without a workspace is the organization's; a
run of a workspace reads that workspace's secret of a name first, then the
organization's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import new_id, utcnow
from stepline.store.base import StoreBase
from stepline.store.errors import NotFoundError
from stepline.store.tables import organizations
from stepline.store.tables import secrets_table as table

# --- SQL -------------------------------------------------------------------------------------

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
ORGANIZATION_EXISTS = sa.select(organizations.c.id).where(
    organizations.c.id == sa.bindparam("organization_id")
)
# A run's secrets: the organization's and, for a run of a workspace, the workspace's.
CIPHERTEXTS = sa.select(table.c.name, table.c.workspace_id, table.c.ciphertext).where(
    table.c.organization_id == sa.bindparam("organization_id"),
    table.c.name.in_(sa.bindparam("names", expanding=True)),
    sa.or_(table.c.workspace_id.is_(None), table.c.workspace_id == sa.bindparam("workspace_id")),
)

# --- records ---------------------------------------------------------------------------------


class SecretNotFoundError(NotFoundError):
    """No secret of that name where it was looked for."""


class SecretRecord(BaseModel):
    """A secret as anyone may see it: never its value."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    organization_id: UUID
    workspace_id: UUID | None = Field(
        default=None, description="The workspace it belongs to; null: the whole organization's."
    )
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """A secret's ciphertext and where it lives (the cipher binds both)."""

    name: str
    workspace_id: UUID | None
    ciphertext: bytes


def _params(organization_id: UUID, workspace_id: UUID | None, **more: Any) -> dict[str, Any]:
    params = {"organization_id": organization_id, **more}
    if workspace_id is not None:
        params["workspace_id"] = workspace_id
    return params


def _record(row: Any) -> SecretRecord:
    return SecretRecord.model_validate(dict(row))


class SecretVerbs(StoreBase):
    """Writing, listing, deleting and reading secrets (as ciphertexts)."""

    async def put_secret(
        self,
        organization_id: UUID,
        workspace_id: UUID | None,
        name: str,
        ciphertext: bytes,
    ) -> tuple[SecretRecord, bool]:
        """Create the secret or replace its value; the record and whether it is new."""
        scoped = workspace_id is not None
        params = _params(organization_id, workspace_id, name=name)

        def op(conn: sa.Connection) -> tuple[SecretRecord, bool]:
            now = utcnow()
            row = conn.execute(FIND[scoped], params).mappings().first()
            if row is not None:
                conn.execute(
                    REPLACE, {"secret_id": row["id"], "new_ciphertext": ciphertext, "now": now}
                )
                return _record({**row, "updated_at": now}), False
            if conn.execute(ORGANIZATION_EXISTS, params).first() is None:
                raise NotFoundError(f"organization {organization_id} not found")
            record = SecretRecord(
                id=new_id(),
                organization_id=organization_id,
                workspace_id=workspace_id,
                name=name,
                created_at=now,
                updated_at=now,
            )
            conn.execute(INSERT, {**record.model_dump(), "ciphertext": ciphertext})
            return record, True

        try:
            return await self.writer.submit(op)
        except sa.exc.IntegrityError:
            # A concurrent writer created it between our look and our insert: replace it.
            return await self.writer.submit(op)

    async def list_secrets(
        self, organization_id: UUID, workspace_id: UUID | None = None
    ) -> list[SecretRecord]:
        """The secrets of the organization (or of one of its workspaces), by name."""
        statement = LIST[workspace_id is not None]
        params = _params(organization_id, workspace_id)
        return await self._read(
            lambda conn: [_record(row) for row in conn.execute(statement, params).mappings()]
        )

    async def get_secret(
        self, organization_id: UUID, workspace_id: UUID | None, name: str
    ) -> SecretRecord | None:
        statement = FIND[workspace_id is not None]
        params = _params(organization_id, workspace_id, name=name)

        def read(conn: sa.Connection) -> SecretRecord | None:
            row = conn.execute(statement, params).mappings().first()
            return None if row is None else _record(row)

        return await self._read(read)

    async def delete_secret(
        self, organization_id: UUID, workspace_id: UUID | None, name: str
    ) -> None:
        """Delete the secret; SecretNotFoundError if there is none of that name there."""
        statement = DELETE[workspace_id is not None]
        params = _params(organization_id, workspace_id, name=name)

        def op(conn: sa.Connection) -> None:
            if conn.execute(statement, params).rowcount != 1:
                raise SecretNotFoundError(f"secret {name!r} not found")

        await self.writer.submit(op)

    async def secret_ciphertexts(
        self, organization_id: UUID, workspace_id: UUID | None, names: Iterable[str]
    ) -> dict[str, StoredSecret]:
        """The secrets of these names a run of the workspace (or of none) reads: the
        workspace's own before the organization's. Missing names are left out."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        # No workspace: a fresh id matches no row, so only the organization's are read.
        params = {
            "organization_id": organization_id,
            "names": wanted,
            "workspace_id": workspace_id or new_id(),
        }

        def read(conn: sa.Connection) -> dict[str, StoredSecret]:
            found: dict[str, StoredSecret] = {}
            for name, row_workspace, ciphertext in conn.execute(CIPHERTEXTS, params):
                if name not in found or row_workspace is not None:
                    found[name] = StoredSecret(name, row_workspace, bytes(ciphertext))
            return found

        return await self._read(read)
