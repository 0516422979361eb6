"""Files as stored: an organization's names and types over content-addressed blobs.

The bytes are not here: they are in the file storage (`stepline.files`), at the file's
`sha256`. A file of another organization, or a deleted one, is not found. Deleting a file
tells the caller whether any live file still refers to its content, so that the content
can be removed from the storage when none does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import new_id, utcnow
from stepline.store import files_sql as sql
from stepline.store import organizations_sql
from stepline.store.errors import NotFoundError
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository


class StoredFileNotFoundError(NotFoundError):
    """No live file of that id in the organization."""


class FileRecord(BaseModel):
    """A file: its name, what it is, and where its bytes are (`sha256`)."""

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=new_id)
    organization_id: UUID
    filename: str
    mime_type: str = Field(description="Sniffed from the content, not taken from the name.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="The content's address in the file storage.")
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


def _record(row: Any) -> FileRecord:
    return FileRecord.model_validate(dict(row))


class FileRepository(Repository):
    """Saving, reading, listing and deleting an organization's files (their records)."""

    async def save(self, record: FileRecord) -> FileRecord:
        """Insert the file's record; NotFoundError if its organization does not exist."""
        params = {"organization_id": record.organization_id}

        def op(conn: sa.Connection) -> FileRecord:
            if conn.execute(organizations_sql.EXISTS, params).first() is None:
                raise NotFoundError(f"organization {record.organization_id} not found")
            conn.execute(sql.INSERT, record.model_dump())
            return record

        return await self._write(op)

    async def get(self, organization_id: UUID, file_id: UUID) -> FileRecord | None:
        """The organization's live file of that id, else None (another's is None too)."""
        params = {"organization_id": organization_id, "file_id": file_id}

        def read(conn: sa.Connection) -> FileRecord | None:
            row = conn.execute(sql.GET, params).mappings().first()
            return None if row is None else _record(row)

        return await self._read(read)

    async def page(
        self,
        organization_id: UUID,
        *,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[FileRecord]:
        """The organization's live files, newest first, one page at a time."""
        return await self._read(
            lambda conn: read_page(
                conn,
                sql.LIST,
                sql.FILES_ORDER,
                limit=limit,
                after=after,
                before=before,
                params={"organization_id": organization_id},
                key_of=lambda row: (row["created_at"], row["id"]),
                item_of=_record,
            )
        )

    async def delete(self, organization_id: UUID, file_id: UUID) -> tuple[FileRecord, bool]:
        """Delete the file (soft); the record and whether its content is still used by
        another live file. StoredFileNotFoundError if the organization has no such file."""
        params = {"organization_id": organization_id, "file_id": file_id}

        def op(conn: sa.Connection) -> tuple[FileRecord, bool]:
            row = conn.execute(sql.GET, params).mappings().first()
            delete = {"in_organization": organization_id, "file_id": file_id, "now": utcnow()}
            if row is None or conn.execute(sql.SOFT_DELETE, delete).rowcount != 1:
                raise StoredFileNotFoundError(f"file {file_id} not found")
            in_use = conn.execute(sql.CONTENT_IN_USE, {"sha256": row["sha256"]}).first() is not None
            return _record(row), in_use

        return await self._write(op)

    async def content_in_use(self, sha256: str) -> bool:
        """Whether a live file (of any organization) refers to this content."""
        return await self._read(
            lambda conn: conn.execute(sql.CONTENT_IN_USE, {"sha256": sha256}).first() is not None
        )
