"""Where file contents live: a small interface, content-addressed by sha256.

A blob's address is the sha256 of its bytes, so the same content stored twice (by one
organization or two) is kept once, and an address names exactly one content. The store's
`files` table says which organization holds which blob under which name; the storage
knows nothing of organizations.

A content arrives in two moves, so that it never has to be held in memory and so that a
file's record and its blob agree even when processes save and delete the same content at
once (`stepline.files.library`):

- `stage` streams it to a private place of the storage's own (hashing and counting, and
  refusing it as soon as it is past the limit), where it can be read back (to sniff it);
- `StagedContent.place` then puts it at its address, called inside the database
  transaction that records the file; the staged copy stays until `discard`, so placing
  again (a transaction retried) needs nothing from the client.

Removal is the mirror: `withdraw` moves a blob aside inside the transaction that removes
its last reference, and the caller then `purge`s it (committed) or `restore`s it (rolled
back).

`LocalFileStorage` keeps blobs under a folder (by default `<STEPLINE_HOME>/files`), each
0600 in folders 0700 (`stepline.private_files`). An S3-compatible storage is another
implementation of `FileStorage`, chosen by `STEPLINE_FILES_BACKEND`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from stepline.errors import InvalidRequest, NotFound, TooLarge
from stepline.private_files import PRIVATE_FILE, make_private_dirs, private_home

SIZE_SETTING = "STEPLINE_MAX_FILE_BYTES"
_ADDRESS = re.compile(r"^[0-9a-f]{64}$")
_TAG = re.compile(r"^[0-9a-f]{32}$")

Content = bytes | Iterable[bytes] | AsyncIterable[bytes]
"""A content to store: its bytes, or its chunks (read until the end)."""


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored content: its address (sha256, hex) and size in bytes."""

    sha256: str
    size: int


class BlobMissing(NotFound):
    """No blob at this address (deleted, or never stored)."""


class StagedContent(Protocol):
    """A content written to the storage, hashed and measured, not yet at its address."""

    @property
    def blob(self) -> Blob: ...

    def open(self) -> BinaryIO:
        """The staged bytes, opened for reading (the caller closes it)."""
        ...

    def place(self) -> None:
        """Make sure the blob is at its address (a no-op if it is there). Synchronous: it
        runs inside the database transaction that records a file of it. Idempotent."""
        ...

    def discard(self) -> None:
        """Forget the staged copy (the placed blob, if any, stays)."""
        ...


class FileStorage(Protocol):
    """Stages, places, opens, checks and removes contents by their sha256."""

    async def stage(self, content: Content, *, max_bytes: int) -> StagedContent:
        """Write `content` aside while hashing it; TooLarge past `max_bytes`, nothing kept."""
        ...

    async def put(self, content: Content, *, max_bytes: int) -> Blob:
        """Store `content` at its address at once (stage, place, discard)."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob, opened for reading; BlobMissing if there is none."""
        ...

    async def read(self, sha256: str) -> bytes:
        """The blob's bytes; BlobMissing if there is none."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> bool:
        """Remove the blob; False if there was none."""
        ...

    def withdraw(self, sha256: str, tag: str) -> bool:
        """Move the blob aside under `tag` (32 hex digits), so that it is no longer at its
        address but can be restored; False if there was none. Synchronous, idempotent."""
        ...

    def restore(self, sha256: str, tag: str) -> None:
        """Put a blob withdrawn under `tag` back at its address (nothing if there is none)."""
        ...

    def purge(self, sha256: str, tag: str) -> None:
        """Remove for good a blob withdrawn under `tag` (nothing if there is none)."""
        ...


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the file is larger than {limit} bytes (the limit, {SIZE_SETTING})")


def check_address(sha256: str) -> str:
    """`sha256` if it is a blob address (64 lower-case hex digits), else InvalidRequest."""
    if not isinstance(sha256, str) or not _ADDRESS.match(sha256):
        raise InvalidRequest(f"not a content address (64 hex digits): {sha256!r}")
    return sha256


@dataclass
class LocalStagedContent:
    """A private temporary file under the storage's `tmp` folder, with its blob's address."""

    storage: LocalFileStorage
    path: Path
    blob: Blob

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def place(self) -> None:
        final = self.storage.path_of(self.blob.sha256)
        if final.exists():
            return
        make_private_dirs(final.parent)
        try:
            # A hard link is atomic and keeps the staged copy, so placing again works.
            os.link(self.path, final)
        except FileExistsError:
            pass  # another saver of the same content placed it first: the same bytes

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class LocalFileStorage:
    """Blobs as files under `root`: `<root>/ab/cd/abcd...` for sha256 `abcd...`; staged
    contents in `<root>/tmp`, withdrawn ones in `<root>/withdrawn` (same file system, so
    every move is a rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging(self) -> Path:
        return self.root / "tmp"

    def path_of(self, sha256: str) -> Path:
        check_address(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _withdrawn(self, sha256: str, tag: str) -> Path:
        check_address(sha256)
        if not _TAG.match(tag):
            raise InvalidRequest(f"not a withdrawal tag (32 hex digits): {tag!r}")
        return self.root / "withdrawn" / f"{sha256}.{tag}"

    async def stage(self, content: Content, *, max_bytes: int) -> LocalStagedContent:
        if isinstance(content, bytes | bytearray | memoryview):
            data = bytes(content)
            if len(data) > max_bytes:
                raise too_large(max_bytes)
            return await asyncio.to_thread(self._stage_all, [data], max_bytes)
        if isinstance(content, AsyncIterable):
            return await self._stage_stream(content, max_bytes)
        return await asyncio.to_thread(self._stage_all, content, max_bytes)

    async def put(self, content: Content, *, max_bytes: int) -> Blob:
        staged = await self.stage(content, max_bytes=max_bytes)
        try:
            await asyncio.to_thread(staged.place)
        finally:
            staged.discard()
        return staged.blob

    def _open_temp(self) -> tuple[BinaryIO, Path]:
        private_home(self.root)
        make_private_dirs(self.staging)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="put-")
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "wb"), Path(name)

    def _stage_all(self, chunks: Iterable[bytes], max_bytes: int) -> LocalStagedContent:
        out, temp = self._open_temp()
        try:
            with out:
                digest = hashlib.sha256()
                size = 0
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return LocalStagedContent(self, temp, Blob(digest.hexdigest(), size))

    async def _stage_stream(
        self, chunks: AsyncIterable[bytes], max_bytes: int
    ) -> LocalStagedContent:
        """Chunk by chunk from the event loop to the disk: one chunk in memory at a time,
        refused as soon as it is past the limit (the stream may be endless)."""
        out, temp = await asyncio.to_thread(self._open_temp)
        try:
            with out:
                digest = hashlib.sha256()
                size = 0
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(_flush, out)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return LocalStagedContent(self, temp, Blob(digest.hexdigest(), size))

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_of(sha256).open("rb")
        except FileNotFoundError:
            raise BlobMissing(f"no stored content {sha256}") from None

    async def read(self, sha256: str) -> bytes:
        def read() -> bytes:
            with self.open(sha256) as blob:
                return blob.read()

        return await asyncio.to_thread(read)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path_of(sha256).is_file)

    async def delete(self, sha256: str) -> bool:
        def delete() -> bool:
            try:
                self.path_of(sha256).unlink()
            except FileNotFoundError:
                return False
            return True

        return await asyncio.to_thread(delete)

    def withdraw(self, sha256: str, tag: str) -> bool:
        aside = self._withdrawn(sha256, tag)
        make_private_dirs(aside.parent)
        try:
            os.rename(self.path_of(sha256), aside)
        except FileNotFoundError:
            return False
        return True

    def restore(self, sha256: str, tag: str) -> None:
        aside = self._withdrawn(sha256, tag)
        final = self.path_of(sha256)
        try:
            # A saver may have placed the same content meanwhile: linking over it is refused,
            # and its copy is as good as ours.
            os.link(aside, final)
        except (FileNotFoundError, FileExistsError):
            pass
        aside.unlink(missing_ok=True)

    def purge(self, sha256: str, tag: str) -> None:
        self._withdrawn(sha256, tag).unlink(missing_ok=True)


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
