"""/v1/workflows/{workflow_id}/runs: start, list, summarise, read, download, cancel and
follow runs (their steps: `routes.steps`; review, retry, replay: `routes.control`).

Rules every route follows:

- A run of another organization, of a workspace the key cannot see, or of another
  workflow than the path's is a 404. Starting, listing and summarising runs need the
  workflow to be live; a run already made stays readable by its id after its workflow is
  deleted.
- `/download` streams `{"run": ..., "workflow_version": ..., "steps": [...]}` as one JSON
  document; `?format=ndjson` streams one step per line and nothing else (the run and its
  version are at `GET /runs/{run_id}` and `GET /versions/{n}`; the `X-Run-Id`,
  `X-Run-Status` and `X-Workflow-Version` headers name them). Both are written while the
  steps are read, a chunk at a time, so a run of any size is never held in memory.
- `/events` is Server-Sent Events: `id` (the event id), `event` (its type, e.g.
  `step.completed`) and `data` (the event object: id, run_id, type, step_id, data,
  created_at); it replays from the first event, or after `Last-Event-ID` (header, or
  `?last_event_id=`), and ends after the run's terminal event (`run.completed`,
  `run.failed`, `run.cancelled`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from stepline import service
from stepline.api.auth import ReadKey, RunKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, invalid, not_found, one_direction
from stepline.api.event_schema import sse_item_schema
from stepline.api.models import ListResponse, RunOut
from stepline.api.responses import json_response, to_json
from stepline.api.routes.steps import list_steps_fast
from stepline.api.state import AppState, StateDep
from stepline.api.times import UtcDatetime
from stepline.records import (
    SETTLED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    utcnow,
)
from stepline.service import Caller
from stepline.service.events import follow_events
from stepline.store.paging import MAX_PAGE_SIZE, Page
from stepline.store.run_head import RunHead
from stepline.store.runs import RunSummary
from stepline.store.types import MAX_BIGINT

router = APIRouter(
    prefix="/v1/workflows/{workflow_id}/runs", tags=["runs"], route_class=DocumentRoute
)

WAIT_DEFAULT_S = 30.0
WAIT_MAX_S = 300.0
KEEP_ALIVE_S = 15.0
DOWNLOAD_CHUNK = 1000
NDJSON = "application/x-ndjson"
RUN_EVENT_REF = "#/components/schemas/RunEvent"

WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
RunId = Annotated[UUID, Path(description="The run's id.")]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]
Format = Annotated[
    Literal["json", "ndjson"],
    Query(description="json: one document; ndjson: one step per line."),
]

# 403: an X-Workspace-Id outside the key's own workspace.
_RUN_ERRORS = error_responses(403, 404)


# --- request and response shapes ------------------------------------------------------------


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The run's inputs, checked against the workflow's schema."
    )


class RunData(BaseModel):
    """A run's result: its output and the value of each end node."""

    run_id: UUID
    status: RunStatus
    output: Any = Field(description="The run's output (null until it completes).")
    end_nodes: dict[str, Any] = Field(
        description="Each end node's outputs (`end` nodes, else the nodes without successors); "
        "null for one that did not complete."
    )


# --- runs ----------------------------------------------------------------------------------


@router.post(
    "",
    status_code=202,
    response_model=RunOut,
    responses={
        **error_responses(403, 404, 409, 413),
        200: {
            "model": RunOut,
            "description": "?wait=true and the run ended or waits for a review: with its `steps`.",
        },
        202: {"model": RunOut, "description": "Queued (or, with ?wait=true, not yet done)."},
    },
    summary="Start a run of the workflow's latest version",
)
async def create_run(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: RunKey,
    body: Annotated[RunCreate | None, Body()] = None,
    wait: Annotated[
        bool,
        Query(description="Wait for the run to end or to wait for a review (up to timeout_s)."),
    ] = False,
    timeout_s: Annotated[
        float, Query(gt=0, le=WAIT_MAX_S, description="How long ?wait=true waits, in seconds.")
    ] = WAIT_DEFAULT_S,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A repeated key (per organization) returns the first run it started.",
        ),
    ] = None,
) -> Response:
    caller = principal.caller
    started = await service.start_run(
        state.service,
        caller,
        workflow_id,
        body.inputs if body is not None else {},
        idempotency_key=idempotency_key,
    )
    run = started.run
    headers = {"Location": f"/v1/workflows/{workflow_id}/runs/{run.id}"}
    if started.replayed:
        headers["Idempotent-Replayed"] = "true"
    if wait:
        run = await service.wait_for_run(state.service, caller, run.id, timeout_s)
        if run.status in SETTLED_RUN_STATUSES:
            steps = await service.run_steps(state.service, caller, run.id, workflow_id)
            return json_response(RunOut.of(run, steps), 200, headers=headers)
    return json_response(RunOut.of(run), 202, headers=headers)


@router.get(
    "",
    response_model=ListResponse[RunOut],
    responses=_RUN_ERRORS,
    summary="List the workflow's runs, newest first",
)
async def list_runs(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    created_from: Annotated[
        UtcDatetime | None, Query(description="Only runs created at or after this time.")
    ] = None,
    created_to: Annotated[
        UtcDatetime | None, Query(description="Only runs created before this time.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Runs per page.")] = 50,
    after: After = None,
    before: Before = None,
) -> Response:
    _one_cursor(after, before)
    page = await service.page_runs(
        state.service,
        principal.caller,
        workflow_id,
        status=status,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
        after=after,
        before=before,
    )
    return json_response(_listing(page, [RunOut.of(run) for run in page.items]))


@router.get(
    "/summary",
    response_model=RunSummary,
    responses=_RUN_ERRORS,
    summary="Counts, success rate, p50/p95 duration and usage of the runs in a time window",
)
async def run_summary(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    since: Annotated[
        UtcDatetime | None,
        Query(description="Window start (runs created at or after); default until - 24 h."),
    ] = None,
    until: Annotated[
        UtcDatetime | None, Query(description="Window end (exclusive); default now.")
    ] = None,
) -> Response:
    until = until or utcnow()
    since = since or _day_before(until)
    if since >= until:
        invalid("query.since", "the window must start before it ends (since < until)")
    summary = await service.summarize_runs(
        state.service, principal.caller, workflow_id, since=since, until=until
    )
    return json_response(summary)


@router.get(
    "/{run_id}",
    response_model=RunOut,
    responses=_RUN_ERRORS,
    summary="Get a run with its step counts",
)
async def get_run(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    run = await service.run_of(state.service, principal.caller, run_id, workflow_id)
    return json_response(RunOut.of(run))


@router.get(
    "/{run_id}/data",
    response_model=RunData,
    responses=_RUN_ERRORS,
    summary="The run's output and each end node's value",
)
async def get_run_data(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    found = await service.run_values(state.service, principal.caller, workflow_id, run_id)
    run = found.run
    data = RunData(run_id=run.id, status=run.status, output=run.output, end_nodes=found.end_nodes)
    return json_response(data)


@router.get(
    "/{run_id}/download",
    response_class=StreamingResponse,
    responses={
        **_RUN_ERRORS,
        200: {
            "description": "json: {run, workflow_version, steps}; ndjson: one step per line.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
    },
    summary="Download the run, its workflow version and every step (streamed)",
)
async def download_run(
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    principal: ReadKey,
    format: Format = "json",
) -> StreamingResponse:
    if format == "ndjson":
        found = await service.run_head(state.service, principal.caller, workflow_id, run_id)
        chunks = service.stream_step_documents(
            state.service, principal.caller, found, chunk=DOWNLOAD_CHUNK
        )
        headers = _download_headers(found, f"run-{found.id}", format)
        return StreamingResponse(_ndjson(chunks), media_type=NDJSON, headers=headers)
    run = await service.run_of(state.service, principal.caller, run_id, workflow_id)
    version = await service.pinned_version(state.service, run)
    chunks = service.stream_step_documents(
        state.service, principal.caller, run, chunk=DOWNLOAD_CHUNK
    )
    headers = _download_headers(run, f"run-{run.id}", format)
    head = b'{"run":' + to_json(RunOut.of(run)) + b',"workflow_version":' + to_json(version)
    return StreamingResponse(
        _json_document(head + b',"steps":[', chunks, b"]}"),
        media_type="application/json",
        headers=headers,
    )


@router.get(
    "/{run_id}/nodes/{node_id}/download",
    response_class=StreamingResponse,
    responses={
        **_RUN_ERRORS,
        200: {
            "description": "json: an array of the node's steps; ndjson: one step per line.",
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
    },
    summary="Download every step of one node of the run (streamed)",
)
async def download_node(
    workflow_id: WorkflowId,
    run_id: RunId,
    node_id: Annotated[str, Path(description="The node's id in the workflow.")],
    state: StateDep,
    principal: ReadKey,
    format: Format = "json",
) -> StreamingResponse:
    caller = principal.caller
    run = await service.run_head(state.service, caller, workflow_id, run_id)
    definition = await service.definition_of(state.service, run.workflow_id, run.workflow_version)
    declared = {node.get("id") for node in definition.get("nodes") or [] if isinstance(node, dict)}
    # Not a node of the version: maybe a generated one (a loop's body), if it has steps.
    if node_id not in declared and not await service.node_has_steps(
        state.service, caller, run, node_id
    ):
        not_found(f"node {node_id!r} in run", run.id)
    chunks = service.stream_step_documents(
        state.service, caller, run, node_id=node_id, chunk=DOWNLOAD_CHUNK
    )
    headers = _download_headers(run, f"run-{run.id}-{_safe_name(node_id)}", format)
    if format == "ndjson":
        return StreamingResponse(_ndjson(chunks), media_type=NDJSON, headers=headers)
    return StreamingResponse(
        _json_document(b"[", chunks, b"]"), media_type="application/json", headers=headers
    )


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunOut,
    responses=error_responses(403, 404),
    summary="Cancel the run (idempotent; a finished run is returned unchanged)",
)
async def cancel_run(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: RunKey
) -> Response:
    run = await service.cancel_run(state.service, principal.caller, workflow_id, run_id)
    return json_response(RunOut.of(run), 202)


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        **_RUN_ERRORS,
        200: {
            "description": "Server-Sent Events, one per run and step transition; the stream "
            "ends after the run's terminal event. Each event's `data` is a RunEvent.",
            "content": {"text/event-stream": {"itemSchema": sse_item_schema(RUN_EVENT_REF)}},
        },
    },
    summary="Follow the run's transitions as Server-Sent Events",
)
async def run_events(
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    principal: ReadKey,
    last_event_id_header: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event id."),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_BIGINT, description="Resume after this event id (as Last-Event-ID)."),
    ] = None,
) -> StreamingResponse:
    after = last_event_id
    if last_event_id_header is not None and last_event_id_header.strip():
        try:
            after = int(last_event_id_header.strip())
        except ValueError:
            after = -1
        if not 0 <= after <= MAX_BIGINT:
            invalid("header.Last-Event-ID", "must be an event id (an integer from 0)")
    await service.run_of(state.service, principal.caller, run_id, workflow_id)
    return StreamingResponse(
        _event_stream(state, principal.caller, run_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- helpers -------------------------------------------------------------------------------


def _day_before(moment: datetime) -> datetime:
    try:
        return moment - timedelta(hours=24)
    except OverflowError:  # within a day of the first representable time
        return datetime.min.replace(tzinfo=UTC)


def _download_headers(run: RunRecord | RunHead, filename: str, format: str) -> dict[str, str]:
    extension = "ndjson" if format == "ndjson" else "json"
    return {
        "Content-Disposition": f'attachment; filename="{filename}.{extension}"',
        "X-Run-Id": str(run.id),
        "X-Run-Status": run.status.value,
        "X-Workflow-Version": str(run.workflow_version),
    }


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100]


async def _json_document(
    head: bytes, chunks: AsyncIterator[list[str]], tail: bytes
) -> AsyncIterator[bytes]:
    """`head`, the steps as a comma-separated JSON list, `tail`: one write per chunk."""
    yield head
    first = True
    async for chunk in chunks:
        body = ",".join(chunk).encode()
        yield body if first else b"," + body
        first = False
    yield tail


async def _ndjson(chunks: AsyncIterator[list[str]]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        chunk.append("")  # the last line's newline
        yield "\n".join(chunk).encode()


async def _event_stream(
    state: AppState, caller: Caller, run_id: UUID, after: int | None
) -> AsyncIterator[bytes]:
    """The run's events as SSE frames as they commit, until its terminal event is sent."""
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield b": stream of run " + str(run_id).encode() + b"\n\n"
    async for events in follow_events(state.service, caller, run_id, after):
        if events:
            yield _frames(events)
            last_sent = loop.time()
        elif loop.time() - last_sent >= KEEP_ALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()


def _frames(events: Iterable[Any]) -> bytes:
    return b"".join(
        b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), to_json(event))
        for event in events
    )


def _one_cursor(after: str | None, before: str | None) -> None:
    one_direction(after, before)


def _listing(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    return {"data": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}


__all__ = ["list_steps_fast", "router"]  # the steps' fast lane, where it was first found
