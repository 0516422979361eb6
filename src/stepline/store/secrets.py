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
from stepline.store import organizations_sql
from stepline.store import secrets_sql as sql
from stepline.store.errors import DuplicateError, NotFoundError
from stepline.store.repository import Repository


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


class SecretRepository(Repository):
    """Writing, listing, deleting and reading secrets (as ciphertexts)."""

    async def put(
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
            row = conn.execute(sql.FIND[scoped], params).mappings().first()
            if row is not None:
                conn.execute(
                    sql.REPLACE, {"secret_id": row["id"], "new_ciphertext": ciphertext, "now": now}
                )
                return _record({**row, "updated_at": now}), False
            if conn.execute(organizations_sql.EXISTS, params).first() is None:
                raise NotFoundError(f"organization {organization_id} not found")
            record = SecretRecord(
                id=new_id(),
                organization_id=organization_id,
                workspace_id=workspace_id,
                name=name,
                created_at=now,
                updated_at=now,
            )
            conn.execute(sql.INSERT, {**record.model_dump(), "ciphertext": ciphertext})
            return record, True

        try:
            return await self._write(op)
        except DuplicateError:
            # A concurrent writer created it between our look and our insert: replace it.
            return await self._write(op)

    async def get(
        self, organization_id: UUID, workspace_id: UUID | None, name: str
    ) -> SecretRecord | None:
        statement = sql.FIND[workspace_id is not None]
        params = _params(organization_id, workspace_id, name=name)

        def read(conn: sa.Connection) -> SecretRecord | None:
            row = conn.execute(statement, params).mappings().first()
            return None if row is None else _record(row)

        return await self._read(read)

    async def delete(self, organization_id: UUID, workspace_id: UUID | None, name: str) -> None:
        """Delete the secret; SecretNotFoundError if there is none of that name there."""
        statement = sql.DELETE[workspace_id is not None]
        params = _params(organization_id, workspace_id, name=name)

        def op(conn: sa.Connection) -> None:
            if conn.execute(statement, params).rowcount != 1:
                raise SecretNotFoundError(f"secret {name!r} not found")

        await self._write(op)

    async def ciphertexts(
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
            for name, row_workspace, ciphertext in conn.execute(sql.CIPHERTEXTS, params):
                if name not in found or row_workspace is not None:
                    found[name] = StoredSecret(name, row_workspace, bytes(ciphertext))
            return found

        return await self._read(read)

    async def list(
        self, organization_id: UUID, workspace_id: UUID | None = None
    ) -> list[SecretRecord]:
        """The secrets of the organization (or of one of its workspaces), by name."""
        statement = sql.LIST[workspace_id is not None]
        params = _params(organization_id, workspace_id)
        return await self._read(
            lambda conn: [_record(row) for row in conn.execute(statement, params).mappings()]
        )
