"""What the document kinds share: file references in, files out, and their handles.

A file reference in a node's config (usually a run input or an earlier node's output,
through a template) is any of:

- `{"file_id": "..."}` (optionally with `filename` and `mime_type`),
- `{"type": "file", "document": {"file_id": "...", ...}}` (a handle's payload, as Retab's
  steps show them),
- `{"id": "...", ...}` (Retab's current document shape), or the id as a string.

The file is looked up in the run's organization (`NodeContext.files`): another
organization's id is not found. Handles are named as Retab names them: `input-file-0`,
`output-file-0` or `output-file-<Name>`, `input-json-0`, `output-json-0`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator

from stepline.errors import NotFound, TooLarge
from stepline.files import FileAccess, FileInfo
from stepline.nodes.base import NodeContext, NodeError
from stepline.records import ErrorDetails, ErrorStage


class FileReference(BaseModel):
    """A file a node reads, by id (see the module's docstring for the shapes taken)."""

    model_config = ConfigDict(extra="ignore")

    file_id: UUID
    filename: str | None = None
    mime_type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"file_id": value}
        if isinstance(value, dict):
            document = value.get("document")
            if value.get("type") == "file" and isinstance(document, dict):
                value = document
            if "file_id" not in value and "id" in value:
                return {**value, "file_id": value["id"]}
        return value


def json_handle(data: Any) -> dict[str, Any]:
    return {"type": "json", "data": data}


def files_of(ctx: NodeContext) -> FileAccess:
    """The run's organization's files, or a NodeError if this engine has no file storage."""
    if ctx.files is None:
        raise NodeError(
            f"'{ctx.node.id}' reads files, but this engine has no file storage",
            stage=ErrorStage.document_fetch,
        )
    return ctx.files


async def fetch(ctx: NodeContext, reference: FileReference, where: str) -> tuple[FileInfo, bytes]:
    """The referenced file and its bytes; a NodeError (document_fetch) naming it if missing."""
    try:
        return await files_of(ctx).read(reference.file_id)
    except NotFound as exc:
        raise NodeError(
            f"{where}: file {reference.file_id} not found",
            stage=ErrorStage.document_fetch,
            details=ErrorDetails(
                type="FileNotFound",
                message=str(exc),
                context={"file_id": str(reference.file_id), "field": where},
            ),
        ) from exc


@contextmanager
def reading(info: FileInfo, handle: str = "input-file-0") -> Iterator[None]:
    """Within: a NodeError records that the step had read `info` (as `input_document` and
    its input handle), so a failure says which file it was about."""
    try:
        yield
    except NodeError as exc:
        exc.having_read({handle: info.handle()}, info.document())
        raise


async def save(ctx: NodeContext, data: bytes, filename: str) -> FileInfo:
    """Store a file the step made; a NodeError (output_storage) naming it if too large."""
    try:
        return await files_of(ctx).save(data, filename)
    except TooLarge as exc:
        raise NodeError(
            f"the file '{filename}' this step made cannot be stored: {exc}",
            stage=ErrorStage.output_storage,
            details=ErrorDetails(type="TooLarge", message=str(exc)),
        ) from exc


def unusable(info: FileInfo, problem: str, *, expected: str | None = None) -> NodeError:
    """The step's error for a file it cannot use, naming the file."""
    message = f"'{info.filename}' (file {info.file_id}, {info.mime_type}) {problem}"
    return NodeError(
        message,
        stage=ErrorStage.execution,
        details=ErrorDetails(
            type="UnusableDocument",
            message=message,
            context={"file_id": str(info.file_id), "filename": info.filename}
            | ({"expected": expected} if expected else {}),
        ),
    )


def stem(filename: str) -> str:
    """The name without its extension: `invoice.pdf` -> `invoice`."""
    head, dot, _ = filename.rpartition(".")
    return head if dot and head else filename
