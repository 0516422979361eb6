"""How a node kind sees files: one organization's, through a small interface.

Node kinds never import the store: the engine hands them a `FileAccess` in their
`NodeContext`, already bound to the run's organization (another organization's file id
is not found, as anywhere else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a node knows of a file: its id, name, type and size."""

    file_id: UUID
    filename: str
    mime_type: str
    size: int

    def document(self) -> dict[str, Any]:
        """The file as Retab's steps show a document: {file_id, filename, mime_type}."""
        return {
            "file_id": str(self.file_id),
            "filename": self.filename,
            "mime_type": self.mime_type,
        }

    def handle(self) -> dict[str, Any]:
        """The file as a handle's payload: {"type": "file", "document": {...}}."""
        return {"type": "file", "document": self.document()}


class FileAccess(Protocol):
    """One organization's files, for the steps of its runs."""

    @property
    def max_bytes(self) -> int:
        """The largest file `save` accepts."""
        ...

    async def info(self, file_id: UUID) -> FileInfo:
        """The file's description; stepline.errors.NotFound if the organization has none."""
        ...

    async def read(self, file_id: UUID) -> tuple[FileInfo, bytes]:
        """The file's description and bytes; NotFound if the organization has none."""
        ...

    async def save(self, data: bytes, filename: str) -> FileInfo:
        """Store a new file (its type sniffed from `data`); TooLarge past `max_bytes`."""
        ...
