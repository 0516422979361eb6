"""An organization's files, whole: the store's records over the storage's blobs.

Saving stores the content first, then its record; reading finds the record (in the
caller's organization), then the content. Deleting removes the record, and the content
too when no other live file refers to it. A record written while the same content was
being removed (a save racing a delete of another file with the same bytes) puts the
content back, since the saver still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from stepline.errors import InvalidRequest, NotFound
from stepline.files.access import FileInfo
from stepline.files.sniff import sniff_mime_type
from stepline.files.storage import BlobMissing, FileStorage, LocalFileStorage, too_large
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


def info_of(record: FileRecord) -> FileInfo:
    return FileInfo(record.id, record.filename, record.mime_type, record.size)


@dataclass
class FileLibrary:
    """Files of every organization over one store and one storage."""

    store: Store
    storage: FileStorage
    max_bytes: int = 50 * 1024 * 1024

    async def save(self, organization_id: UUID, data: bytes, filename: str) -> FileRecord:
        name = check_filename(filename)
        if len(data) > self.max_bytes:
            raise too_large(self.max_bytes)
        blob = await self.storage.put(data, max_bytes=self.max_bytes)
        record = FileRecord(
            organization_id=organization_id,
            filename=name,
            mime_type=sniff_mime_type(data, name),
            size=blob.size,
            sha256=blob.sha256,
        )
        saved = await self.store.files.save(record)
        if not await self.storage.exists(blob.sha256):
            await self.storage.put(data, max_bytes=self.max_bytes)
        return saved

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
        try:
            record, in_use = await self.store.files.delete(organization_id, file_id)
        except StoredFileNotFoundError:
            raise FileNotFound(f"file {file_id} not found") from None
        if not in_use:
            await self.storage.delete(record.sha256)
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
