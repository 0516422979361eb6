"""Every endpoint of the native API as a `Call` builder, shared by the sync and async clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel

from stepline.sdk._http import Call, query
from stepline.sdk.models import (
    File,
    Page,
    Review,
    ReviewResult,
    Run,
    RunData,
    RunSummary,
    Secret,
    Step,
    ValidationResult,
    Version,
    Workflow,
)

M = TypeVar("M", bound=BaseModel)
Id = UUID | str

# How long the server waits on `?wait=true` when not told (its default; at most 300 s).
DEFAULT_WAIT_S = 30.0


def _model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate_json(response.content)


def _page(cls: type[M]) -> Callable[[httpx.Response], Page[M]]:
    def parse(response: httpx.Response) -> Page[M]:
        body = response.json()
        return Page(
            items=[cls.model_validate(item) for item in body["data"]],
            next_cursor=body.get("next_cursor"),
            prev_cursor=body.get("prev_cursor"),
        )

    return parse


def _nothing(response: httpx.Response) -> None:
    return None


def _json(response: httpx.Response) -> Any:
    return response.json()


def _text(response: httpx.Response) -> str:
    return response.text


def _raw(response: httpx.Response) -> httpx.Response:
    return response


def _paging(filters: Mapping[str, Any], after: str | None, limit: int | None) -> dict[str, Any]:
    return query({**filters, "after": after, "limit": limit})


# -- workflows ---------------------------------------------------------------------------

WORKFLOWS = "/v1/workflows"


def workflow_path(workflow_id: Id) -> str:
    return f"{WORKFLOWS}/{workflow_id}"


def create_workflow(definition: Mapping[str, Any]) -> Call[Workflow]:
    return Call("POST", WORKFLOWS, _model(Workflow), json=dict(definition))


def list_workflows(
    filters: Mapping[str, Any], after: str | None, limit: int | None
) -> Call[Page[Workflow]]:
    params = _paging(filters, after, limit)
    return Call("GET", WORKFLOWS, _page(Workflow), params=params, idempotent=True)


def get_workflow(workflow_id: Id) -> Call[Workflow]:
    return Call("GET", workflow_path(workflow_id), _model(Workflow), idempotent=True)


def update_workflow(workflow_id: Id, definition: Mapping[str, Any]) -> Call[Workflow]:
    path = workflow_path(workflow_id)
    return Call("PUT", path, _model(Workflow), json=dict(definition), idempotent=True)


def patch_workflow(workflow_id: Id, changes: Mapping[str, Any]) -> Call[Workflow]:
    body = {k: v for k, v in changes.items() if v is not None}
    return Call("PATCH", workflow_path(workflow_id), _model(Workflow), json=body)


def delete_workflow(workflow_id: Id) -> Call[None]:
    return Call("DELETE", workflow_path(workflow_id), _nothing, idempotent=True)


def duplicate_workflow(workflow_id: Id, name: str | None) -> Call[Workflow]:
    body = {"name": name} if name is not None else {}
    return Call("POST", f"{workflow_path(workflow_id)}/duplicate", _model(Workflow), json=body)


def validate_workflow(definition: Mapping[str, Any]) -> Call[ValidationResult]:
    # Validation changes nothing on the server, so a retry is always safe.
    path = f"{WORKFLOWS}/validate"
    return Call("POST", path, _model(ValidationResult), json=dict(definition), idempotent=True)


def upload_workflow(path: str | Path) -> Call[Workflow]:
    file = Path(path)
    content_type = "application/json" if file.suffix.lower() == ".json" else "application/yaml"
    files = {"file": (file.name, file.read_bytes(), content_type)}
    return Call("POST", f"{WORKFLOWS}/upload", _model(Workflow), files=files)


def list_versions(workflow_id: Id, after: str | None, limit: int | None) -> Call[Page[Version]]:
    path = f"{workflow_path(workflow_id)}/versions"
    params = _paging({}, after, limit)
    return Call("GET", path, _page(Version), params=params, idempotent=True)


def get_version(workflow_id: Id, version: int) -> Call[Version]:
    path = f"{workflow_path(workflow_id)}/versions/{version}"
    return Call("GET", path, _model(Version), idempotent=True)


def workflow_diagram(workflow_id: Id, format: str) -> Call[Any]:
    parse = _text if format == "mermaid" else _json
    path = f"{workflow_path(workflow_id)}/diagram"
    return Call("GET", path, parse, params={"format": format}, idempotent=True)


# -- runs --------------------------------------------------------------------------------


def runs_path(workflow_id: Id) -> str:
    return f"{workflow_path(workflow_id)}/runs"


def run_path(workflow_id: Id, run_id: Id) -> str:
    return f"{runs_path(workflow_id)}/{run_id}"


def create_run(
    workflow_id: Id,
    inputs: Mapping[str, Any] | None,
    *,
    wait: bool,
    timeout_s: float | None,
    idempotency_key: str | None,
    client_timeout: float,
) -> Call[Run]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    params = query({"wait": True, "timeout_s": timeout_s}) if wait else {}
    read_timeout = (timeout_s or DEFAULT_WAIT_S) + client_timeout if wait else None
    return Call(
        "POST",
        runs_path(workflow_id),
        _model(Run),
        params=params,
        json={"inputs": dict(inputs or {})},
        headers=headers,
        # A repeated key returns the first run, so only then may a lost answer be retried.
        idempotent=idempotency_key is not None,
        read_timeout=read_timeout,
    )


def list_runs(
    workflow_id: Id, filters: Mapping[str, Any], after: str | None, limit: int | None
) -> Call[Page[Run]]:
    params = _paging(filters, after, limit)
    return Call("GET", runs_path(workflow_id), _page(Run), params=params, idempotent=True)


def get_run(workflow_id: Id, run_id: Id) -> Call[Run]:
    return Call("GET", run_path(workflow_id, run_id), _model(Run), idempotent=True)


def cancel_run(workflow_id: Id, run_id: Id) -> Call[Run]:
    # Cancelling is idempotent on the server: asking twice is the same as asking once.
    path = f"{run_path(workflow_id, run_id)}/cancel"
    return Call("POST", path, _model(Run), idempotent=True)


def retry_run(workflow_id: Id, run_id: Id) -> Call[Run]:
    # Not idempotent: a second retry of a run already queued again is a 409.
    return Call("POST", f"{run_path(workflow_id, run_id)}/retry", _model(Run))


def replay_run(
    workflow_id: Id,
    run_id: Id,
    from_node: str,
    inputs: Mapping[str, Any] | None,
    workflow_version: int | None,
) -> Call[Run]:
    body: dict[str, Any] = {"from_node": from_node}
    if inputs is not None:
        body["inputs"] = dict(inputs)
    if workflow_version is not None:
        body["workflow_version"] = workflow_version
    return Call("POST", f"{run_path(workflow_id, run_id)}/replay", _model(Run), json=body)


def run_summary(workflow_id: Id, window: Mapping[str, Any]) -> Call[RunSummary]:
    path = f"{runs_path(workflow_id)}/summary"
    return Call("GET", path, _model(RunSummary), params=query(window), idempotent=True)


def run_data(workflow_id: Id, run_id: Id) -> Call[RunData]:
    path = f"{run_path(workflow_id, run_id)}/data"
    return Call("GET", path, _model(RunData), idempotent=True)


def download_run(workflow_id: Id, run_id: Id, format: str) -> Call[httpx.Response]:
    path = f"{run_path(workflow_id, run_id)}/download"
    return Call("GET", path, _raw, params={"format": format}, idempotent=True)


def download_node(workflow_id: Id, run_id: Id, node_id: str, format: str) -> Call[httpx.Response]:
    path = f"{run_path(workflow_id, run_id)}/nodes/{node_id}/download"
    return Call("GET", path, _raw, params={"format": format}, idempotent=True)


def run_events(workflow_id: Id, run_id: Id, last_event_id: int | None) -> Call[httpx.Response]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    path = f"{run_path(workflow_id, run_id)}/events"
    return Call("GET", path, _raw, headers=headers, idempotent=True, read_timeout=60.0)


# -- steps -------------------------------------------------------------------------------


def list_steps(
    workflow_id: Id, run_id: Id, filters: Mapping[str, Any], after: str | None, limit: int | None
) -> Call[Page[Step]]:
    path = f"{run_path(workflow_id, run_id)}/steps"
    params = _paging(filters, after, limit)
    return Call("GET", path, _page(Step), params=params, idempotent=True)


def get_step(workflow_id: Id, run_id: Id, step_id: Id) -> Call[Step]:
    path = f"{run_path(workflow_id, run_id)}/steps/{step_id}"
    return Call("GET", path, _model(Step), idempotent=True)


UNSET: Any = object()
"""`output` left out of a review: the step keeps its proposed output."""


def review_step(
    workflow_id: Id, run_id: Id, step_id: Id, approved: bool, output: Any, comment: str | None
) -> Call[ReviewResult]:
    body: dict[str, Any] = {"approved": approved}
    if output is not UNSET:
        body["output"] = output
    if comment is not None:
        body["comment"] = comment
    path = f"{run_path(workflow_id, run_id)}/steps/{step_id}/review"
    # The same decision sent again changes nothing on the server, so a retry is safe.
    return Call("POST", path, _model(ReviewResult), json=body, idempotent=True)


# -- reviews -----------------------------------------------------------------------------


def list_reviews(
    filters: Mapping[str, Any], after: str | None, limit: int | None
) -> Call[Page[Review]]:
    params = _paging(filters, after, limit)
    return Call("GET", "/v1/reviews", _page(Review), params=params, idempotent=True)


# -- secrets -----------------------------------------------------------------------------

SECRETS = "/v1/secrets"


def secret_path(name: str) -> str:
    return f"{SECRETS}/{quote(name, safe='')}"


def _secrets(response: httpx.Response) -> list[Secret]:
    return [Secret.model_validate(item) for item in response.json()["data"]]


def set_secret(name: str, value: str) -> Call[Secret]:
    # Setting the same value twice leaves the same secret: a retry is safe.
    return Call("PUT", secret_path(name), _model(Secret), json={"value": value}, idempotent=True)


def list_secrets() -> Call[list[Secret]]:
    return Call("GET", SECRETS, _secrets, idempotent=True)


def get_secret(name: str) -> Call[Secret]:
    return Call("GET", secret_path(name), _model(Secret), idempotent=True)


def delete_secret(name: str) -> Call[None]:
    # Not retried: a second delete of a secret the first one removed would be a 404.
    return Call("DELETE", secret_path(name), _nothing)


# -- files -------------------------------------------------------------------------------

FILES = "/v1/files"


def file_path(file_id: Id) -> str:
    return f"{FILES}/{quote(str(file_id), safe='')}"


def _content(response: httpx.Response) -> bytes:
    return response.content


def upload_file(content: str | Path | bytes, filename: str | None) -> Call[File]:
    """A path's bytes (named after it unless `filename` is given), or bytes (`filename`
    required)."""
    if isinstance(content, bytes | bytearray | memoryview):
        if not filename:
            raise ValueError("uploading bytes needs a filename")
        data = bytes(content)
    else:
        source = Path(content)
        data = source.read_bytes()
        filename = filename or source.name
    files = {"file": (filename, data, "application/octet-stream")}
    # Not retried: a second upload would be a second file.
    return Call("POST", FILES, _model(File), files=files)


def list_files(after: str | None, limit: int | None) -> Call[Page[File]]:
    return Call("GET", FILES, _page(File), params=_paging({}, after, limit), idempotent=True)


def get_file(file_id: Id) -> Call[File]:
    return Call("GET", file_path(file_id), _model(File), idempotent=True)


def download_file(file_id: Id) -> Call[bytes]:
    return Call("GET", f"{file_path(file_id)}/content", _content, idempotent=True)


def delete_file(file_id: Id) -> Call[None]:
    # Not retried: a second delete of a file the first one removed would be a 404.
    return Call("DELETE", file_path(file_id), _nothing)


def save_download(data: bytes, to: str | Path) -> Path:
    target = Path(to)
    target.write_bytes(data)
    return target
