"""Files as stored: an organization's names and types over content-addressed blobs.

The bytes are not here: they are in the file storage (`stepline.files`), at the file's
`sha256`. A file of another organization, or a deleted one, is not found. Deleting a file
tells the caller whether any live file still refers to its content, so that the content
can be removed from the storage when none does.

A save and a delete can each act on the storage inside their transaction (`place_content`,
`release_content`) while holding the content's lock: on SQLite every write transaction
already holds the database's write lock (BEGIN IMMEDIATE) from its start, across
processes; on PostgreSQL a transaction-scoped advisory lock per sha256. So "is the content
still referred to" and "take it away" cannot interleave with "refer to it" and "make sure
it is there".
"""

from __future__ import annotations

from collections.abc import Callable
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


def _lock_content(conn: sa.Connection, sha256: str) -> None:
    """Hold the content's lock to the end of the transaction (see the module's docstring)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sql.CONTENT_LOCK, {"space": sql.CONTENT_LOCK_SPACE, "key": content_key(sha256)}
        )


def content_key(sha256: str) -> int:
    """The 32-bit advisory lock key of a content: its address's first 8 hex digits, signed."""
    return int.from_bytes(bytes.fromhex(sha256[:8]), "big", signed=True)


class FileRepository(Repository):
    """Saving, reading, listing and deleting an organization's files (their records)."""

    async def save(
        self, record: FileRecord, *, place_content: Callable[[], None] | None = None
    ) -> FileRecord:
        """Insert the file's record; NotFoundError if its organization does not exist.
        `place_content` runs after the insert, in the transaction and under the content's
        lock: it makes sure the content is in the storage (a failure undoes the insert)."""
        params = {"organization_id": record.organization_id}

        def op(conn: sa.Connection) -> FileRecord:
            if conn.execute(organizations_sql.EXISTS, params).first() is None:
                raise NotFoundError(f"organization {record.organization_id} not found")
            _lock_content(conn, record.sha256)
            conn.execute(sql.INSERT, record.model_dump())
            if place_content is not None:
                place_content()
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

    async def delete(
        self,
        organization_id: UUID,
        file_id: UUID,
        *,
        release_content: Callable[[str], None] | None = None,
    ) -> tuple[FileRecord, bool]:
        """Delete the file (soft); the record and whether its content is still used by
        another live file. StoredFileNotFoundError if the organization has no such file.
        When no live file uses the content any more, `release_content(sha256)` runs in
        the transaction, under the content's lock, to take it out of the storage."""
        params = {"organization_id": organization_id, "file_id": file_id}

        def op(conn: sa.Connection) -> tuple[FileRecord, bool]:
            row = conn.execute(sql.GET, params).mappings().first()
            if row is None:
                raise StoredFileNotFoundError(f"file {file_id} not found")
            _lock_content(conn, row["sha256"])
            delete = {"in_organization": organization_id, "file_id": file_id, "now": utcnow()}
            if conn.execute(sql.SOFT_DELETE, delete).rowcount != 1:
                raise StoredFileNotFoundError(f"file {file_id} not found")
            in_use = conn.execute(sql.CONTENT_IN_USE, {"sha256": row["sha256"]}).first() is not None
            if not in_use and release_content is not None:
                release_content(row["sha256"])
            return _record(row), in_use

        return await self._write(op)

    async def content_in_use(self, sha256: str) -> bool:
        """Whether a live file (of any organization) refers to this content."""
        return await self._read(
            lambda conn: conn.execute(sql.CONTENT_IN_USE, {"sha256": sha256}).first() is not None
        )
