"""The files verbs on a real store (SQLite, and PostgreSQL when reachable) over a local
file storage: upload (bytes or chunks, the limit), get, list, open, delete; another
organization's file is not found; a run's inputs refer only to the caller's live files."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stepline import service
from stepline.errors import InvalidRequest, NotFound, TooLarge
from stepline.files.library import FileLibrary
from stepline.files.storage import LocalFileStorage
from stepline.service import Caller, ServiceContext
from stepline.service import files as verbs
from stepline.store import Store


@pytest.fixture
def files_ctx(ctx: ServiceContext, store: Store, tmp_path: Path) -> ServiceContext:
    ctx.files = FileLibrary(store, LocalFileStorage(tmp_path / "files"), max_bytes=100)
    return ctx


async def test_upload_get_list_open_delete(files_ctx: ServiceContext, store: Store) -> None:
    caller = Caller(await store.organizations.ensure(f"f-{uuid.uuid4().hex[:6]}"))
    other = Caller(await store.organizations.ensure(f"g-{uuid.uuid4().hex[:6]}"))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    made = await verbs.upload_file(files_ctx, caller, chunks(), "hello.pdf")
    assert made.size == 11 and made.mime_type.startswith("text/")
    assert (await verbs.get_file(files_ctx, caller, made.id)).sha256 == made.sha256
    _, stream = await verbs.open_file(files_ctx, caller, made.id)
    assert b"".join(verbs.read_chunks(stream)) == b"hello world"
    assert [f.id for f in (await verbs.list_files(files_ctx, caller)).items] == [made.id]

    for verb in (verbs.get_file, verbs.open_file, verbs.delete_file):
        with pytest.raises(NotFound):
            await verb(files_ctx, other, made.id)
    assert (await verbs.list_files(files_ctx, other)).items == []

    await verbs.delete_file(files_ctx, caller, made.id)
    with pytest.raises(NotFound):
        await verbs.get_file(files_ctx, caller, made.id)


async def test_the_limit_is_named_and_bad_names_are_refused(
    files_ctx: ServiceContext, store: Store
) -> None:
    caller = Caller(await store.organizations.ensure())
    with pytest.raises(TooLarge, match="STEPLINE_MAX_FILE_BYTES"):
        await verbs.upload_file(files_ctx, caller, [b"x" * 60, b"x" * 60], "big.bin")
    with pytest.raises(TooLarge, match="STEPLINE_MAX_FILE_BYTES"):
        await verbs.upload_file(files_ctx, caller, b"x" * 101, "big.bin")
    with pytest.raises(InvalidRequest) as refused:
        await verbs.upload_file(files_ctx, caller, b"x", "../x", field="body.file")
    assert refused.value.details[0].field == "body.file.filename"


async def test_run_inputs_refer_to_the_callers_live_files(
    files_ctx: ServiceContext, store: Store
) -> None:
    caller = Caller(await store.organizations.ensure(f"r-{uuid.uuid4().hex[:6]}"))
    other = Caller(await store.organizations.ensure(f"s-{uuid.uuid4().hex[:6]}"))
    saved = await service.create_workflow(
        files_ctx,
        caller,
        {"name": "refs", "nodes": [{"id": "a", "type": "reshape", "config": {"output": 1}}]},
    )
    mine = await verbs.upload_file(files_ctx, caller, b"mine", "a.txt")
    theirs = await verbs.upload_file(files_ctx, other, b"theirs", "b.txt")

    ok = {"doc": {"file_id": str(mine.id)}, "list": [{"file_id": str(mine.id)}]}
    await service.start_run(files_ctx, caller, saved.workflow.id, ok)

    bad = {"a": {"file_id": str(theirs.id)}, "b": [{"file_id": "nope"}]}
    with pytest.raises(InvalidRequest) as refused:
        await service.start_run(files_ctx, caller, saved.workflow.id, bad)
    fields = [d.field for d in refused.value.details]
    assert fields == ["body.inputs.a.file_id", "body.inputs.b[0].file_id"]

    # A dict with more than the one key is a value, not a reference.
    value = {"doc": {"file_id": "anything", "note": "not a reference"}}
    await service.start_run(files_ctx, caller, saved.workflow.id, value)
