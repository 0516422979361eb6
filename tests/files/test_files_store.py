"""Files per organization on SQLite and PostgreSQL: the store's verbs and the library
that pairs them with the storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stepline.errors import InvalidRequest, NotFound, TooLarge
from stepline.files import LocalFileStorage
from stepline.files.library import FileLibrary
from stepline.records import new_id
from stepline.store import NotFoundError, Store
from stepline.store.files import FileRecord, StoredFileNotFoundError


def record(organization_id, data: bytes = b"abc", name: str = "a.txt") -> FileRecord:  # type: ignore[no-untyped-def]
    return FileRecord(
        organization_id=organization_id,
        filename=name,
        mime_type="text/plain",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


async def test_a_saved_file_is_found_in_its_organization_only(store: Store) -> None:
    org = await store.organizations.ensure("acme")
    other = await store.organizations.ensure("globex")
    saved = await store.files.save(record(org))
    assert await store.files.get(org, saved.id) == saved
    assert await store.files.get(other, saved.id) is None
    assert await store.files.get(org, new_id()) is None
    with pytest.raises(StoredFileNotFoundError):
        await store.files.delete(other, saved.id)
    assert await store.files.get(org, saved.id) == saved


async def test_a_file_of_an_unknown_organization_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="organization"):
        await store.files.save(record(new_id()))


async def test_files_list_newest_first_by_cursor(store: Store) -> None:
    org = await store.organizations.ensure("acme")
    other = await store.organizations.ensure("globex")
    saved = [await store.files.save(record(org, bytes([i]), f"{i}.txt")) for i in range(5)]
    await store.files.save(record(other))
    first = await store.files.page(org, limit=2)
    assert [f.id for f in first.items] == [saved[4].id, saved[3].id]
    assert first.prev_cursor is None and first.next_cursor is not None
    second = await store.files.page(org, limit=2, after=first.next_cursor)
    third = await store.files.page(org, limit=2, after=second.next_cursor)
    assert [f.id for f in second.items + third.items] == [s.id for s in reversed(saved[:3])]
    assert third.next_cursor is None
    back = await store.files.page(org, limit=2, before=second.prev_cursor)
    assert back.items == first.items


async def test_a_deleted_file_is_gone_and_says_whether_its_content_is_still_used(
    store: Store,
) -> None:
    org = await store.organizations.ensure("acme")
    other = await store.organizations.ensure("globex")
    mine = await store.files.save(record(org, b"shared"))
    theirs = await store.files.save(record(other, b"shared"))
    deleted, in_use = await store.files.delete(org, mine.id)
    assert deleted.id == mine.id and in_use is True
    assert await store.files.get(org, mine.id) is None
    assert (await store.files.page(org)).items == []
    with pytest.raises(StoredFileNotFoundError):
        await store.files.delete(org, mine.id)
    _, in_use = await store.files.delete(other, theirs.id)
    assert in_use is False
    assert not await store.files.content_in_use(mine.sha256)


async def test_the_library_saves_sniffs_reads_and_deletes(store: Store, tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    library = FileLibrary(store, storage, max_bytes=64)
    org = await store.organizations.ensure("acme")
    other = await store.organizations.ensure("globex")
    saved = await library.save(org, b"not a pdf at all", "invoice.pdf")
    assert (saved.filename, saved.mime_type, saved.size) == ("invoice.pdf", "text/plain", 16)
    assert await library.read(org, saved.id) == (saved, b"not a pdf at all")
    with pytest.raises(NotFound):
        await library.read(other, saved.id)
    twin = await library.save(other, b"not a pdf at all", "copy.txt")
    assert twin.sha256 == saved.sha256 and twin.id != saved.id
    await library.delete(org, saved.id)
    assert await storage.exists(saved.sha256)  # the other organization's file uses it
    await library.delete(other, twin.id)
    assert not await storage.exists(saved.sha256)
    with pytest.raises(NotFound):
        await library.delete(other, twin.id)


async def test_the_library_refuses_a_file_past_the_limit_naming_it(
    store: Store, tmp_path: Path
) -> None:
    library = FileLibrary(store, LocalFileStorage(tmp_path / "files"), max_bytes=64)
    org = await store.organizations.ensure("acme")
    with pytest.raises(TooLarge, match="64 bytes"):
        await library.save(org, b"x" * 65, "big.bin")
    assert (await store.files.page(org)).items == []


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a\nb", "x" * 256])
async def test_the_library_refuses_a_bad_file_name(store: Store, tmp_path: Path, name: str) -> None:
    library = FileLibrary(store, LocalFileStorage(tmp_path / "files"))
    org = await store.organizations.ensure("acme")
    with pytest.raises(InvalidRequest):
        await library.save(org, b"x", name)
