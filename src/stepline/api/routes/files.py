"""/v1/files: an organization's files: upload (multipart), list, read, download, delete.

An upload is read chunk by chunk and refused (413, naming STEPLINE_MAX_FILE_BYTES) as soon
as it is past the limit. Its type is sniffed from its bytes, never taken from its name or
the client's Content-Type. A run's inputs refer to a file as `{"file_id": "<uuid>"}`.
Another organization's file is a 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from stepline.api.auth import ReadKey, WriteKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, invalid, one_direction
from stepline.api.models import ListResponse
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.service import files as verbs
from stepline.store.files import FileRecord
from stepline.store.paging import MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/files", tags=["files"], route_class=DocumentRoute)

FileId = Annotated[UUID, Path(description="The file's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]
CHUNK = 64 * 1024
UPLOAD_PATH = "/v1/files"
MULTIPART_OVERHEAD = 64 * 1024
"""Beyond the file's own limit, what a multipart body of one file may add (its headers)."""


class FileOut(BaseModel):
    """A stored file. A run's inputs refer to it as `{"file_id": "<id>"}`."""

    id: UUID
    filename: str
    mime_type: str = Field(description="Sniffed from the content, not taken from the name.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="The content's SHA-256, hex.")
    created_at: datetime


def file_out(record: FileRecord) -> FileOut:
    return FileOut(
        id=record.id,
        filename=record.filename,
        mime_type=record.mime_type,
        size=record.size,
        sha256=record.sha256,
        created_at=record.created_at,
    )


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name (quotes, backslashes and controls replaced)
    and the exact name, percent-encoded, as `filename*` (RFC 6266)."""
    fallback = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "file"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.post(
    "",
    status_code=201,
    response_model=FileOut,
    responses=error_responses(403, 413),
    summary="Upload a file (multipart/form-data, field `file`)",
)
async def upload_file(
    file: Annotated[UploadFile, File(description="The file; its name is kept, its type sniffed.")],
    state: StateDep,
    principal: WriteKey,
) -> Response:
    filename = file.filename
    if not filename:
        invalid("body.file", "the file part has no file name")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(CHUNK):
            yield chunk

    try:
        record = await verbs.upload_file(
            state.service, principal.caller, chunks(), filename, field="body.file"
        )
    finally:
        await file.close()
    return json_response(file_out(record), 201)


@router.get(
    "",
    response_model=ListResponse[FileOut],
    summary="List the organization's files, newest first",
)
async def list_files(
    state: StateDep,
    principal: ReadKey,
    limit: Limit = 50,
    after: After = None,
    before: Before = None,
) -> Response:
    one_direction(after, before)
    page = await verbs.list_files(
        state.service, principal.caller, limit=limit, after=after, before=before
    )
    return json_response(
        {
            "data": [file_out(record) for record in page.items],
            "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor,
        }
    )


@router.get(
    "/{file_id}",
    response_model=FileOut,
    responses=error_responses(403, 404),
    summary="One file's name, type, size and digest",
)
async def get_file(file_id: FileId, state: StateDep, principal: ReadKey) -> Response:
    return json_response(file_out(await verbs.get_file(state.service, principal.caller, file_id)))


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={
        **error_responses(403, 404),
        200: {
            "description": "The file's bytes, of its sniffed type.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
    summary="Download a file's bytes",
)
async def file_content(file_id: FileId, state: StateDep, principal: ReadKey) -> Response:
    record, stream = await verbs.open_file(state.service, principal.caller, file_id)
    headers = {
        "Content-Disposition": content_disposition(record.filename),
        "Content-Length": str(record.size),
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{record.sha256}"',
    }
    return StreamingResponse(
        verbs.read_chunks(stream), media_type=record.mime_type, headers=headers
    )


@router.delete(
    "/{file_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404),
    summary="Delete a file (runs that refer to it then fail to start)",
)
async def delete_file(file_id: FileId, state: StateDep, principal: WriteKey) -> Response:
    await verbs.delete_file(state.service, principal.caller, file_id)
    return Response(status_code=204)
