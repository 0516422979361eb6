"""An organization's files, whole: the store's records over the storage's blobs.

Saving streams the content to the storage's staging area (hashed, measured, refused
past the limit), sniffs its type from there, then records the file and places the content
at its address in one database transaction. Reading finds the record (in the caller's
organization), then the content. Deleting removes the record, and the content too when no
other live file refers to it, also inside that transaction.

Both transactions hold the content's lock (`FileRepository`: the database's write lock
on SQLite, an advisory lock per content on PostgreSQL), so across processes a save and a
delete of the same bytes take turns: a delete only takes away a content no committed file
refers to, and a save puts the content back if a delete took it just before. A delete
moves the blob aside rather than unlinking it, so that a transaction which then fails to
commit gives it back.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from uuid import UUID

from stepline.errors import InvalidRequest, NotFound
from stepline.files.access import FileInfo
from stepline.files.sniff import sniff_stream
from stepline.files.storage import (
    BlobMissing,
    Content,
    FileStorage,
    LocalFileStorage,
    StagedContent,
)
from stepline.settings import Settings
from stepline.store import Store
from stepline.store.files import FileRecord, StoredFileNotFoundError

MAX_FILENAME_CHARS = 255


class FileNotFound(NotFound):
    """No such file in the organization (or it was deleted)."""


def open_file_storage(settings: Settings) -> FileStorage:
    """The storage `STEPLINE_FILES_BACKEND` names (only `local` for now)."""
    return LocalFileStorage(settings.files_path())


def open_file_library(settings: Settings, store: Store) -> FileLibrary:
    """The organizations' files over `store` and the storage of `settings`, with its limit."""
    return FileLibrary(store, open_file_storage(settings), max_bytes=settings.max_file_bytes)


def check_filename(filename: str) -> str:
    """The name as given, if it is a usable file name (no folder, no control character)."""
    name = filename.strip()
    if not name or len(name) > MAX_FILENAME_CHARS:
        raise InvalidRequest(f"a file name must have 1 to {MAX_FILENAME_CHARS} characters")
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest(f"a file name cannot hold '/', '\\' or control characters: {name!r}")
    return name


def _sniff(staged: StagedContent, filename: str) -> str:
    with staged.open() as stream:
        return sniff_stream(stream, filename)


def info_of(record: FileRecord) -> FileInfo:
    return FileInfo(record.id, record.filename, record.mime_type, record.size)


@dataclass
class FileLibrary:
    """Files of every organization over one store and one storage."""

    store: Store
    storage: FileStorage
    max_bytes: int = 50 * 1024 * 1024

    async def save(self, organization_id: UUID, content: Content, filename: str) -> FileRecord:
        """Store `content` (bytes, or chunks read until the end) as a file of the
        organization; TooLarge (naming the limit) as soon as it is past it."""
        name = check_filename(filename)
        staged = await self.storage.stage(content, max_bytes=self.max_bytes)
        try:
            record = FileRecord(
                organization_id=organization_id,
                filename=name,
                mime_type=await asyncio.to_thread(_sniff, staged, name),
                size=staged.blob.size,
                sha256=staged.blob.sha256,
            )
            return await self.store.files.save(record, place_content=staged.place)
        finally:
            await asyncio.to_thread(staged.discard)

    async def get(self, organization_id: UUID, file_id: UUID) -> FileRecord:
        record = await self.store.files.get(organization_id, file_id)
        if record is None:
            raise FileNotFound(f"file {file_id} not found")
        return record

    async def read(self, organization_id: UUID, file_id: UUID) -> tuple[FileRecord, bytes]:
        record = await self.get(organization_id, file_id)
        try:
            return record, await self.storage.read(record.sha256)
        except BlobMissing:
            raise FileNotFound(
                f"the content of file {file_id} ({record.filename}) is missing from the storage"
            ) from None

    async def delete(self, organization_id: UUID, file_id: UUID) -> FileRecord:
        tag = uuid.uuid4().hex
        withdrawn: list[str] = []

        def release_content(sha256: str) -> None:
            if self.storage.withdraw(sha256, tag):
                withdrawn.append(sha256)

        try:
            record, _ = await self.store.files.delete(
                organization_id, file_id, release_content=release_content
            )
        except BaseException as exc:
            # Not committed (or not known to be): the file may still be live, so its
            # content goes back.
            for sha256 in withdrawn:
                await asyncio.to_thread(self.storage.restore, sha256, tag)
            if isinstance(exc, StoredFileNotFoundError):
                raise FileNotFound(f"file {file_id} not found") from None
            raise
        for sha256 in withdrawn:
            await asyncio.to_thread(self.storage.purge, sha256, tag)
        return record

    def for_organization(self, organization_id: UUID) -> OrganizationFiles:
        return OrganizationFiles(self, organization_id)


@dataclass
class OrganizationFiles:
    """One organization's files, as node kinds see them (`FileAccess`)."""

    library: FileLibrary
    organization_id: UUID

    @property
    def max_bytes(self) -> int:
        return self.library.max_bytes

    async def info(self, file_id: UUID) -> FileInfo:
        return info_of(await self.library.get(self.organization_id, file_id))

    async def read(self, file_id: UUID) -> tuple[FileInfo, bytes]:
        record, data = await self.library.read(self.organization_id, file_id)
        return info_of(record), data

    async def save(self, data: bytes, filename: str) -> FileInfo:
        return info_of(await self.library.save(self.organization_id, data, filename))
