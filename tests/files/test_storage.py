"""The local file storage: content-addressed, deduplicated, private, bounded."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stepline.errors import InvalidRequest, TooLarge
from stepline.files import BlobMissing, LocalFileStorage

LIMIT = 1024


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_a_blob_is_stored_at_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    blob = await storage.put(b"hello", max_bytes=LIMIT)
    assert blob.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert blob.size == 5
    path = storage.path_of(blob.sha256)
    assert path == tmp_path / "files" / blob.sha256[:2] / blob.sha256[2:4] / blob.sha256
    assert path.read_bytes() == b"hello"
    assert await storage.read(blob.sha256) == b"hello"
    with storage.open(blob.sha256) as opened:
        assert opened.read() == b"hello"


async def test_the_same_content_twice_is_kept_once(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    first = await storage.put(b"same", max_bytes=LIMIT)
    second = await storage.put([b"sa", b"me"], max_bytes=LIMIT)
    assert first == second
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert blobs == [storage.path_of(first.sha256)]  # and no temporary file left behind


async def test_blobs_and_their_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        storage = LocalFileStorage(tmp_path / "files")
        blob = await storage.put(b"secret", max_bytes=LIMIT)
    finally:
        os.umask(old)
    path = storage.path_of(blob.sha256)
    assert mode(path) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "files"):
        assert mode(folder) == 0o700


async def test_delete_removes_the_blob_and_reports_a_missing_one(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    blob = await storage.put(b"bye", max_bytes=LIMIT)
    assert await storage.exists(blob.sha256)
    assert await storage.delete(blob.sha256) is True
    assert not await storage.exists(blob.sha256)
    assert await storage.delete(blob.sha256) is False
    with pytest.raises(BlobMissing):
        await storage.read(blob.sha256)


async def test_content_past_the_limit_is_refused_naming_it_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    storage = LocalFileStorage(tmp_path / "files")

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 100

    for content in (b"x" * (LIMIT + 1), [b"x" * 600, b"x" * 600], endless()):
        with pytest.raises(TooLarge, match=r"1024 bytes .*STEPLINE_MAX_FILE_BYTES"):
            await storage.put(content, max_bytes=LIMIT)
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []


async def test_an_address_that_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    for address in ("../../etc/passwd", "ABC", "a" * 63):
        with pytest.raises(InvalidRequest):
            await storage.exists(address)


async def test_the_workers_services_keep_files_under_the_home_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepline.engine.services import open_node_services
    from stepline.settings import Settings

    monkeypatch.setenv("STEPLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPLINE_MAX_FILE_BYTES", "2048")
    settings = Settings()
    async with open_node_services(settings) as services:
        assert isinstance(services.files, LocalFileStorage)
        assert services.files.root == tmp_path / "home" / "files"
        assert services.max_file_bytes == 2048
    monkeypatch.setenv("STEPLINE_FILES_DIR", str(tmp_path / "elsewhere"))
    assert Settings().files_path() == tmp_path / "elsewhere"


async def test_a_staged_content_is_readable_then_placed_again_and_again(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    staged = await storage.stage([b"chunk one, ", b"chunk two"], max_bytes=LIMIT)
    assert staged.blob.sha256 == hashlib.sha256(b"chunk one, chunk two").hexdigest()
    assert not await storage.exists(staged.blob.sha256)
    with staged.open() as stream:
        assert stream.read() == b"chunk one, chunk two"
    staged.place()
    staged.place()  # a transaction retried places again: nothing changes
    staged.discard()
    assert await storage.read(staged.blob.sha256) == b"chunk one, chunk two"
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


async def test_a_stream_past_the_limit_leaves_nothing_staged(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 100

    with pytest.raises(TooLarge):
        await storage.stage(endless(), max_bytes=LIMIT)
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


async def test_a_withdrawn_blob_is_restored_or_purged(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    blob = await storage.put(b"aside", max_bytes=LIMIT)
    tag = "0" * 32
    assert storage.withdraw(blob.sha256, tag)
    assert not storage.withdraw(blob.sha256, tag)  # already aside
    assert not await storage.exists(blob.sha256)
    storage.restore(blob.sha256, tag)
    assert await storage.read(blob.sha256) == b"aside"
    assert storage.withdraw(blob.sha256, tag)
    storage.purge(blob.sha256, tag)
    storage.restore(blob.sha256, tag)  # purged: nothing to restore
    assert not await storage.exists(blob.sha256)
    assert list((tmp_path / "files" / "withdrawn").iterdir()) == []
