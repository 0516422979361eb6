"""Where file contents live: a small interface, content-addressed by sha256.

A blob's address is the sha256 of its bytes, so the same content stored twice (by one
organization or two) is kept once, and an address names exactly one content. The store's
`files` table says which organization holds which blob under which name; the storage
knows nothing of organizations.

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
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored content: its address (sha256, hex) and size in bytes."""

    sha256: str
    size: int


class BlobMissing(NotFound):
    """No blob at this address (deleted, or never stored)."""


class FileStorage(Protocol):
    """Puts, opens, checks and deletes contents by their sha256."""

    async def put(
        self, content: bytes | Iterable[bytes] | AsyncIterable[bytes], *, max_bytes: int
    ) -> Blob:
        """Store `content` (bytes or chunks); TooLarge past `max_bytes`, nothing kept."""
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


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the file is larger than {limit} bytes (the limit, {SIZE_SETTING})")


def check_address(sha256: str) -> str:
    """`sha256` if it is a blob address (64 lower-case hex digits), else InvalidRequest."""
    if not isinstance(sha256, str) or not _ADDRESS.match(sha256):
        raise InvalidRequest(f"not a content address (64 hex digits): {sha256!r}")
    return sha256


class LocalFileStorage:
    """Blobs as files under `root`: `<root>/ab/cd/abcd...` for sha256 `abcd...`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        check_address(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(
        self, content: bytes | Iterable[bytes] | AsyncIterable[bytes], *, max_bytes: int
    ) -> Blob:
        if isinstance(content, bytes | bytearray | memoryview):
            data = bytes(content)
            if len(data) > max_bytes:
                raise too_large(max_bytes)
            return await asyncio.to_thread(self._write, [data], max_bytes)
        if isinstance(content, AsyncIterable):
            # Collected chunk by chunk, never past the limit (the stream may be endless).
            chunks: list[bytes] = []
            size = 0
            async for chunk in content:
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                chunks.append(bytes(chunk))
            return await asyncio.to_thread(self._write, chunks, max_bytes)
        return await asyncio.to_thread(self._write, content, max_bytes)

    def _write(self, chunks: Iterable[bytes], max_bytes: int) -> Blob:
        """Write to a private temporary file while hashing, then move it to its address."""
        staging = self.root / "tmp"
        private_home(self.root)
        make_private_dirs(staging)
        digest = hashlib.sha256()
        size = 0
        fd, temp_name = tempfile.mkstemp(dir=staging, prefix="put-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), PRIVATE_FILE)
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            final = self.path_of(sha256)
            make_private_dirs(final.parent)
            if final.exists():
                temp.unlink()  # the same content is stored already: keep one copy
            else:
                os.replace(temp, final)
            return Blob(sha256, size)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

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
