"""Organizations: the tenants everything else (workflows, runs, keys, secrets...) belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from stepline.records import new_id, utcnow
from stepline.store import organizations_sql as sql
from stepline.store.errors import DuplicateError
from stepline.store.repository import Repository


class OrganizationRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: UUID
    name: str
    created_at: datetime


class OrganizationRepository(Repository):
    """Making sure an organization exists, finding one, counting them."""

    async def ensure(self, name: str = "default") -> UUID:
        """The id of the organization called `name`, created if there is none."""

        def op(conn: sa.Connection) -> UUID:
            found: UUID | None = conn.execute(sql.ID_BY_NAME, {"name": name}).scalar()
            if found is not None:
                return found
            org_id = new_id()
            conn.execute(sql.INSERT, {"id": org_id, "name": name, "created_at": utcnow()})
            return org_id

        try:
            return await self._write(op)
        except DuplicateError:
            # Another process created it between our look and our insert: it exists now.
            return await self._write(op)

    async def get(self, organization_id: UUID) -> OrganizationRecord | None:
        params = {"organization_id": organization_id}
        return await self._read(lambda conn: _first(conn, sql.BY_ID, params))

    async def find(self, name: str) -> OrganizationRecord | None:
        """The organization called `name`, if any."""
        return await self._read(lambda conn: _first(conn, sql.BY_NAME, {"name": name}))

    async def count_with_keys(self) -> tuple[int, int]:
        """How many organizations and API keys exist (the first start creates both when 0)."""

        def read(conn: sa.Connection) -> tuple[int, int]:
            orgs = conn.execute(sql.COUNT).scalar()
            keys = conn.execute(sql.COUNT_KEYS).scalar()
            return int(orgs or 0), int(keys or 0)

        return await self._read(read)


def _first(
    conn: sa.Connection, query: sa.Select[Any], params: Mapping[str, Any]
) -> OrganizationRecord | None:
    row = conn.execute(query, params).mappings().first()
    return None if row is None else OrganizationRecord.model_validate(dict(row))
