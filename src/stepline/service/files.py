"""An organization's files: the verbs behind `/v1/files`, `stepline files` and the file
references of a run's inputs (`{"file_id": "<uuid>"}`).

Every verb works through the organization's `FileLibrary` (`ServiceContext.files`);
another organization's file, or a deleted one, is NotFound.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Iterator
from typing import Any, BinaryIO
from uuid import UUID

from stepline.errors import Detail, InvalidRequest, Misconfigured, TooLarge
from stepline.files.library import FileLibrary, FileNotFound
from stepline.files.storage import BlobMissing
from stepline.service.context import Caller, ServiceContext
from stepline.store.files import FileRecord
from stepline.store.paging import Page

MAX_REFERENCE_DEPTH = 32
"""How deep in a run's inputs file references are looked for."""
MAX_REFERENCES = 256
"""How many file references one run's inputs may hold."""
CHUNK = 64 * 1024


def library_of(ctx: ServiceContext) -> FileLibrary:
    if ctx.files is None:
        raise Misconfigured("this process was opened without a file library")
    return ctx.files


async def upload_file(
    ctx: ServiceContext,
    caller: Caller,
    content: bytes | Iterable[bytes] | AsyncIterable[bytes],
    filename: str,
    *,
    field: str = "file",
) -> FileRecord:
    """Store `content` (bytes, or chunks read until the end) as a file of the caller's
    organization; TooLarge (naming STEPLINE_MAX_FILE_BYTES) as soon as it is past the limit.
    Chunks go straight to the storage: the content is never held in memory whole."""
    library = library_of(ctx)
    try:
        return await library.save(caller.organization_id, content, filename)
    except TooLarge:
        raise
    except InvalidRequest as exc:
        if exc.details:
            raise
        raise InvalidRequest(str(exc), details=[Detail(f"{field}.filename", str(exc))]) from None


async def get_file(ctx: ServiceContext, caller: Caller, file_id: UUID) -> FileRecord:
    """The caller's live file; FileNotFound otherwise (another organization's too)."""
    return await library_of(ctx).get(caller.organization_id, file_id)


async def open_file(
    ctx: ServiceContext, caller: Caller, file_id: UUID
) -> tuple[FileRecord, BinaryIO]:
    """The caller's file and its content, opened for reading (the caller closes it)."""
    library = library_of(ctx)
    record = await library.get(caller.organization_id, file_id)
    try:
        return record, library.storage.open(record.sha256)
    except BlobMissing:
        raise FileNotFound(
            f"the content of file {file_id} ({record.filename}) is missing from the storage"
        ) from None


def read_chunks(stream: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """The stream's bytes, chunk by chunk; closes it at the end."""
    with stream:
        while chunk := stream.read(size):
            yield chunk


async def read_file(ctx: ServiceContext, caller: Caller, file_id: UUID) -> tuple[FileRecord, bytes]:
    """The caller's file and all its bytes."""
    return await library_of(ctx).read(caller.organization_id, file_id)


async def delete_file(ctx: ServiceContext, caller: Caller, file_id: UUID) -> FileRecord:
    """Delete the caller's file (its content too, unless another live file shares it)."""
    return await library_of(ctx).delete(caller.organization_id, file_id)


async def list_files(
    ctx: ServiceContext,
    caller: Caller,
    *,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Page[FileRecord]:
    """The caller's live files, newest first, one page at a time."""
    return await ctx.store.files.page(
        caller.organization_id, limit=limit, after=after, before=before
    )


# --- file references in a run's inputs ---------------------------------------------------------


def file_references(document: Any, path: str) -> list[tuple[str, Any]]:
    """Every `{"file_id": ...}` in `document` (to a bounded depth), with its path
    (`body.inputs.invoice.file_id`)."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any, at: str, depth: int) -> None:
        if depth > MAX_REFERENCE_DEPTH or len(found) > MAX_REFERENCES:
            return
        if isinstance(value, dict):
            if "file_id" in value and len(value) == 1:
                found.append((f"{at}.file_id", value["file_id"]))
                return
            for key, item in value.items():
                walk(item, f"{at}.{key}", depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{at}[{index}]", depth + 1)

    walk(document, path, 0)
    return found


async def check_file_references(
    ctx: ServiceContext, caller: Caller, inputs: Any, field: str
) -> None:
    """InvalidRequest naming each input that refers to a file that is not a live file of the
    caller's organization (or is not a file id at all)."""
    references = file_references(inputs, field)
    if not references:
        return
    if len(references) > MAX_REFERENCES:
        message = f"a run's inputs may refer to at most {MAX_REFERENCES} files"
        raise InvalidRequest(message, details=[Detail(field, message)])
    details: list[Detail] = []
    for at, value in references:
        try:
            file_id = UUID(value) if isinstance(value, str) else None
        except ValueError:
            file_id = None
        if file_id is None:
            details.append(Detail(at, f"not a file id: {value!r}"))
            continue
        if await ctx.store.files.get(caller.organization_id, file_id) is None:
            details.append(Detail(at, f"file {file_id} not found"))
    if details:
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
        raise InvalidRequest(f"the run's inputs refer to missing files: {summary}", details=details)
