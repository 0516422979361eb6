"""What Retab's clients send to start a run, turned into a stepline run's inputs.

A Retab run takes `json_inputs` and `documents`. stepline's run has one inputs object, so:

- `json_inputs` is that object (its keys are the workflow's `inputs` properties; Retab
  keys them by start node, stepline's inputs are the workflow's own);
- each of `documents` (name -> document) becomes the input of that name, as the file
  reference `{"file_id": "<uuid>"}` stepline's document kinds read. A document is a
  stepline file (uploaded with `POST /v1/files`) named by its id (`"<uuid>"`,
  `{"file_id"}`, `{"id"}` or a handle `{"type": "file", "document": {...}}`), or, as
  Retab's SDK sends a local file, `{"filename", "url": "data:<mime>;base64,<content>"}`,
  which is stored as a new file of the caller's organization first.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from stepline.errors import Detail, InvalidRequest, NotFound
from stepline.service import Caller, InvalidRunInputs, ServiceContext
from stepline.service.files import get_file, upload_file


class RunStart(BaseModel):
    """`POST /v1/workflows/{workflow_id}/run`'s body (keys Retab adds later are ignored, as
    Retab's own request models ignore them)."""

    model_config = ConfigDict(extra="ignore")

    json_inputs: dict[str, Any] = Field(
        default_factory=dict, description="The run's inputs, checked against its schema."
    )
    documents: dict[str, Any] = Field(
        default_factory=dict,
        description='Input name -> a stepline file id ("<uuid>", {"file_id"}, {"id"}, a file '
        'handle) or {"filename", "url": "data:<mime>;base64,..."} (stored as a new file).',
    )


class RunCreate(RunStart):
    """`POST /v1/workflows/runs`'s body."""

    workflow_id: UUID
    version: int | str | None = Field(
        default=None,
        description="The workflow version to run: its number, or a run's "
        "`workflow_version_id`; `production`, `draft`, `latest` or none: the latest.",
    )


class CancelRequest(BaseModel):
    """`POST /v1/workflows/runs/{run_id}/cancel`'s body (a cancel is idempotent already:
    `command_id` is accepted and not needed)."""

    model_config = ConfigDict(extra="ignore")

    command_id: str | None = None


def _refused(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", details=[Detail(field, message)])


def _file_id(value: Any) -> str | None:
    """The file id a document names, or None when it names none."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    if value.get("type") == "file" and isinstance(value.get("document"), dict):
        return _file_id(value["document"])
    for key in ("file_id", "id"):
        if isinstance(value.get(key), str):
            return str(value[key])
    return None


async def _stored_data_url(
    ctx: ServiceContext, caller: Caller, document: dict[str, Any], field: str
) -> UUID:
    url = document.get("url")
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        raise _refused(f"{field}.url", "only data: URLs are read (data:<mime>;base64,<content>)")
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise _refused(f"{field}.url", "the data: URL must be base64 (data:<mime>;base64,...)")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _refused(f"{field}.url", "the data: URL's content is not valid base64") from None
    filename = document.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise _refused(f"{field}.filename", "a document sent as a data: URL needs its filename")
    record = await upload_file(ctx, caller, content, filename, field=field)
    return record.id


async def document_reference(
    ctx: ServiceContext, caller: Caller, value: Any, field: str
) -> dict[str, str]:
    """The file reference a document becomes (its file checked to be the caller's)."""
    if isinstance(value, dict) and "url" in value:
        return {"file_id": str(await _stored_data_url(ctx, caller, value, field))}
    raw = _file_id(value)
    if raw is None:
        raise _refused(
            field,
            'expected a file id, {"file_id": ...}, a file handle or {"filename", "url"}',
        )
    try:
        file_id = UUID(raw)
    except ValueError:
        raise _refused(field, f"not a file id: {raw!r}") from None
    try:
        await get_file(ctx, caller, file_id)
    except NotFound:
        raise _refused(field, f"file {file_id} not found") from None
    return {"file_id": str(file_id)}


async def run_inputs(ctx: ServiceContext, caller: Caller, body: RunStart) -> dict[str, Any]:
    """The stepline inputs of a Retab run request: `json_inputs` plus each document as a
    file reference under its name."""
    inputs = dict(body.json_inputs)
    for name, value in body.documents.items():
        field = f"body.documents.{name}"
        if name in inputs:
            raise _refused(field, f"{name!r} is given in json_inputs too")
        inputs[name] = await document_reference(ctx, caller, value, field)
    return inputs


def _where(field: str, body: RunStart) -> str:
    """A field of stepline's inputs (`body.inputs.invoice...`) where the request gave it."""
    rest = field.removeprefix("body.inputs")
    if rest == field:
        return field
    name = rest.lstrip(".").split(".", 1)[0].split("[", 1)[0]
    if name in body.documents:
        return "body.documents" + rest
    return "body.json_inputs" + rest


def located(error: InvalidRunInputs, body: RunStart) -> InvalidRequest:
    """The schema's refusal of a run's inputs, each field named where the request put it
    (`json_inputs` or `documents`)."""
    details = [Detail(_where(d.field, body), d.message) for d in error.details]
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
    return InvalidRequest(f"the run's inputs are invalid: {summary}", details=details)
