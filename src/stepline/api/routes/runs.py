"""/v1/workflows/{workflow_id}/runs: start, list, summarise, read, download, cancel and
follow runs, and read their steps.

Rules every route follows:

- A run of another organization, of a workspace the key cannot see, or of another
  workflow than the path's is a 404. Starting, listing and summarising runs need the
  workflow to be live; a run already made stays readable by its id after its workflow is
  deleted.
- A step is named in `/steps/{step_id}` by its record's UUID (`id`) or by its `step_id`
  string (`fetch`, `loop.body[2]`); a UUID is tried as a record id first.
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
import json
import re
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Scope

from stepline.api.auth import Principal, ReadKey, RunKey, principal_of
from stepline.api.documents import DocumentRoute, check_inputs_document
from stepline.api.errors import (
    ApiError,
    ErrorDetail,
    check_run_inputs,
    error_responses,
    invalid,
    not_found,
)
from stepline.api.event_schema import sse_item_schema
from stepline.api.models import ListResponse, RunOut
from stepline.api.responses import json_response, to_json
from stepline.api.routes.secrets import checked_run_secrets
from stepline.api.state import AppState, StateDep
from stepline.api.storable_text import parameter_problem
from stepline.api.times import UtcDatetime
from stepline.records import (
    FINISHED_RUN_STATUSES,
    SETTLED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    WorkflowRecord,
    utcnow,
)
from stepline.store.events import MAX_EVENTS, TERMINAL_RUN_EVENTS
from stepline.store.listings import RunHead, RunSummary
from stepline.store.paging import MAX_PAGE_SIZE, Page
from stepline.store.types import MAX_BIGINT, MAX_INT

router = APIRouter(
    prefix="/v1/workflows/{workflow_id}/runs", tags=["runs"], route_class=DocumentRoute
)

WAIT_DEFAULT_S = 30.0
WAIT_MAX_S = 300.0
EVENT_POLL_S = 0.1
KEEP_ALIVE_S = 15.0
DOWNLOAD_CHUNK = 1000
MAX_IDEMPOTENCY_KEY = 255
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
    inputs = body.inputs if body is not None else {}
    check_inputs_document(inputs, state.limits, "body.inputs")
    key = _idempotency_key(idempotency_key)
    workflow = await _live_workflow(state, principal, workflow_id)
    replayed = await _replay(state, principal, workflow_id, key)
    if replayed is None:
        version = await state.store.get_version(workflow.id, workflow.latest_version)
        if version is None:
            not_found(f"version {workflow.latest_version} of workflow", workflow_id)
        schema = version.definition.get("inputs") or {"type": "object"}
        check_run_inputs(schema, inputs)
        workspace_id = principal.workspace_id or workflow.workspace_id
        redactor = await checked_run_secrets(
            state,
            await state.secret_references(version),
            principal.organization_id,
            workspace_id,
        )
        record = RunRecord(
            workflow_id=workflow.id,
            workflow_version=version.version,
            organization_id=principal.organization_id,
            workspace_id=workspace_id,
            user_id=principal.user_id,
            trigger="api",
            inputs=redactor.data(inputs),
            idempotency_key=key,
        )
        try:
            run = await state.store.create_run(record)
        except sa.exc.IntegrityError:
            # A concurrent request with the same key won the race: answer with its run.
            replayed = await _replay(state, principal, workflow_id, key)
            if replayed is None:
                raise
            run = replayed
        else:
            state.wake_workers()
    else:
        run = replayed
    headers = {"Location": f"/v1/workflows/{workflow_id}/runs/{run.id}"}
    if replayed is not None:
        headers["Idempotent-Replayed"] = "true"
    if wait:
        run = await _wait_until_settled(state, principal, run, timeout_s)
        if run.status in SETTLED_RUN_STATUSES:
            steps = await state.store.list_steps(run.id)
            return json_response(RunOut.of(run, steps), 200, headers=headers)
        return json_response(RunOut.of(run), 202, headers=headers)
    if replayed is not None:
        run = await _run_of(state, principal, workflow_id, run.id)
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
    await _live_workflow(state, principal, workflow_id)
    page = await state.store.page_runs(
        principal.organization_id,
        workflow_id=workflow_id,
        workspace_id=principal.workspace_id,
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
    await _live_workflow(state, principal, workflow_id)
    summary = await state.store.run_summary(
        principal.organization_id,
        workflow_id,
        since=since,
        until=until,
        workspace_id=principal.workspace_id,
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
    return json_response(RunOut.of(await _run_of(state, principal, workflow_id, run_id)))


@router.get(
    "/{run_id}/data",
    response_model=RunData,
    responses=_RUN_ERRORS,
    summary="The run's output and each end node's value",
)
async def get_run_data(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    run = await _run_of(state, principal, workflow_id, run_id)
    version = await state.store.get_version(run.workflow_id, run.workflow_version)
    ends = _end_nodes(version.definition if version is not None else {})
    values: dict[str, Any] = dict.fromkeys(ends)
    wanted = set(ends)
    async for chunk in state.store.iter_steps(run.id, organization_id=principal.organization_id):
        for step in chunk:
            if step.step_id in wanted and step.status is StepStatus.completed:
                values[step.step_id] = step.outputs
    data = RunData(run_id=run.id, status=run.status, output=run.output, end_nodes=values)
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
        found = await _run_head(state, principal, workflow_id, run_id)
        chunks = state.store.iter_step_documents(
            found.id,
            organization_id=principal.organization_id,
            chunk=DOWNLOAD_CHUNK,
            workflow_id=found.workflow_id,
        )
        headers = _download_headers(found, f"run-{found.id}", format)
        return StreamingResponse(_ndjson(chunks), media_type=NDJSON, headers=headers)
    run = await _run_of(state, principal, workflow_id, run_id)
    version = await state.store.get_version(run.workflow_id, run.workflow_version)
    chunks = state.store.iter_step_documents(
        run.id,
        organization_id=principal.organization_id,
        chunk=DOWNLOAD_CHUNK,
        workflow_id=run.workflow_id,
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
    run = await _run_head(state, principal, workflow_id, run_id)
    org = principal.organization_id
    version = await state.store.get_version(run.workflow_id, run.workflow_version)
    declared = {
        node.get("id")
        for node in (version.definition.get("nodes") or [] if version is not None else [])
        if isinstance(node, dict)
    }
    if node_id not in declared:
        # Not a node of the version; maybe a generated one (a loop's body): any step of it?
        probe = await state.store.page_steps(
            run.id, organization_id=org, node_id=node_id, include_io=False, limit=1
        )
        if not probe.items:
            not_found(f"node {node_id!r} in run", run.id)
    chunks = state.store.iter_step_documents(
        run.id,
        organization_id=org,
        node_id=node_id,
        chunk=DOWNLOAD_CHUNK,
        workflow_id=run.workflow_id,
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
    await _run_of(state, principal, workflow_id, run_id)
    run = await state.store.request_cancel(principal.organization_id, run_id)
    if run.status not in FINISHED_RUN_STATUSES:
        # Held by a worker: the one in this process stops it now; any other notices the
        # request at its next poll (within half a second).
        state.cancel_local(run_id)
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
    await _run_of(state, principal, workflow_id, run_id)
    return StreamingResponse(
        _event_stream(state, principal.organization_id, run_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- steps ---------------------------------------------------------------------------------


@router.get(
    "/{run_id}/steps",
    response_model=ListResponse[StepRecord],
    responses=_RUN_ERRORS,
    summary="List the run's steps in execution order (filters combine with AND)",
)
async def list_steps(
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    principal: ReadKey,
    status: Annotated[StepStatus | None, Query(description="Only steps in this status.")] = None,
    node_id: Annotated[str | None, Query(description="Only steps of this node.")] = None,
    node_type: Annotated[str | None, Query(description="Only steps of this node kind.")] = None,
    loop_id: Annotated[str | None, Query(description="Only steps inside this loop.")] = None,
    iteration: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="Only steps of this loop iteration.")
    ] = None,
    include_io: Annotated[
        bool,
        Query(description="false: leave out inputs, outputs, handle_inputs, handle_outputs."),
    ] = True,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Steps per page.")] = 100,
    after: After = None,
    before: Before = None,
) -> Response:
    _one_cursor(after, before)
    query = StepsQuery(
        status=status,
        node_id=node_id,
        node_type=node_type,
        loop_id=loop_id,
        iteration=iteration,
        include_io=include_io,
        limit=limit,
        after=after,
        before=before,
    )
    response = await _steps_page(state, principal, workflow_id, run_id, query)
    if response is None:
        not_found("run", run_id)
    return response


class StepsQuery(BaseModel):
    """`list_steps`' query parameters, with the same types and bounds (for its fast lane)."""

    model_config = ConfigDict(extra="ignore")

    status: StepStatus | None = None
    node_id: str | None = None
    node_type: str | None = None
    loop_id: str | None = None
    iteration: Annotated[int | None, Field(ge=0, le=MAX_INT)] = None
    include_io: bool = True
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 100
    after: str | None = None
    before: str | None = None


class _StepsPath(BaseModel):
    workflow_id: UUID
    run_id: UUID


_STEPS_PATH = re.compile(r"/v1/workflows/([^/]+)/runs/([^/]+)/steps")


async def list_steps_fast(scope: Scope) -> Response | None:
    """`GET .../runs/{run_id}/steps` without FastAPI's routing and dependency solving,
    which cost more than the page itself; called first by the request middleware.

    It answers only a request the route would answer with 200, validated the same way
    (the route's query model, the same key lookup, scope and workspace rules); for
    anything else (a bad parameter, key or cursor, an unknown run, a surprise) it gives
    None and the route answers, with its errors.
    """
    if scope["method"] != "GET" or scope.get("root_path"):
        return None
    matched = _STEPS_PATH.fullmatch(scope["path"])
    if matched is None:
        return None
    request = Request(scope)
    if parameter_problem(request) is not None:
        return None
    try:
        path = _StepsPath(workflow_id=matched[1], run_id=matched[2])  # type: ignore[arg-type]
        query = StepsQuery.model_validate(dict(request.query_params))
        if query.after is not None and query.before is not None:
            return None
        state: AppState = request.app.state.stepline
        principal = await principal_of(request, state, "read")
        return await _steps_page(state, principal, path.workflow_id, path.run_id, query)
    except Exception:  # the route will say what is wrong
        return None


async def _steps_page(
    state: AppState, principal: Principal, workflow_id: UUID, run_id: UUID, query: StepsQuery
) -> Response | None:
    """The page's response; None if the caller sees no such run of the workflow."""
    page = await state.store.page_step_documents(
        run_id,
        organization_id=principal.organization_id,
        workflow_id=workflow_id,
        workspace_id=principal.workspace_id,
        status=query.status,
        node_id=query.node_id,
        node_type=query.node_type,
        loop_id=query.loop_id,
        iteration=query.iteration,
        include_io=query.include_io,
        limit=query.limit,
        after=query.after,
        before=query.before,
    )
    if page is None:
        return None
    body = (
        '{"data":['
        + ",".join(page.items)
        + '],"next_cursor":'
        + _json_text(page.next_cursor)
        + ',"prev_cursor":'
        + _json_text(page.prev_cursor)
        + "}"
    )
    return Response(body.encode(), media_type="application/json")


@router.get(
    "/{run_id}/steps/{step_id}",
    response_model=StepRecord,
    responses=_RUN_ERRORS,
    summary="Get one step, by its record id (UUID) or its step_id",
)
async def get_step(
    workflow_id: WorkflowId,
    run_id: RunId,
    step_id: Annotated[
        str, Path(description="The step record's UUID (`id`), or its `step_id` string.")
    ],
    state: StateDep,
    principal: ReadKey,
) -> Response:
    await _run_of(state, principal, workflow_id, run_id)
    org = principal.organization_id
    step: StepRecord | None = None
    as_uuid = _uuid_or_none(step_id)
    if as_uuid is not None:
        step = await state.store.get_run_step(org, run_id, as_uuid)
    if step is None:
        step = await state.store.get_run_step(org, run_id, step_id)
    if step is None:
        not_found(f"step {step_id!r} of run", run_id)
    return json_response(step)


# --- helpers -------------------------------------------------------------------------------


async def _live_workflow(
    state: AppState, principal: Principal, workflow_id: UUID
) -> WorkflowRecord:
    """The caller's live workflow (in its workspace, when it has one), or 404."""
    workflow = await state.store.get_workflow(principal.organization_id, workflow_id)
    if workflow is None or (
        principal.workspace_id is not None and workflow.workspace_id != principal.workspace_id
    ):
        not_found("workflow", workflow_id)
    return workflow


async def _run_of(
    state: AppState, principal: Principal, workflow_id: UUID, run_id: UUID
) -> RunRecord:
    """The caller's run of this workflow, with its step counts, or 404."""
    run = await state.store.get_run(run_id, principal.organization_id)
    if run is None or run.workflow_id != workflow_id or not _visible(principal, run):
        not_found("run", run_id)
    return run


async def _run_head(
    state: AppState, principal: Principal, workflow_id: UUID, run_id: UUID
) -> RunHead:
    """The caller's run of this workflow, without step counts, or 404."""
    head = await state.store.run_head(principal.organization_id, run_id)
    if head is None or not head.visible(workflow_id, principal.workspace_id):
        not_found("run", run_id)
    return head


def _uuid_or_none(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _visible(principal: Principal, run: RunRecord) -> bool:
    return principal.workspace_id is None or run.workspace_id == principal.workspace_id


def _idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        invalid(
            "header.Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} non-blank characters"
        )
    return key


async def _replay(
    state: AppState, principal: Principal, workflow_id: UUID, key: str | None
) -> RunRecord | None:
    """The run an earlier request with this Idempotency-Key started, if any."""
    if key is None:
        return None
    run = await state.store.find_run_by_idempotency_key(principal.organization_id, key)
    if run is None:
        return None
    if run.workflow_id != workflow_id or not _visible(principal, run):
        _key_in_use(key)
    return run


def _key_in_use(key: str) -> NoReturn:
    message = f"Idempotency-Key {key!r} was already used to start a run of another workflow"
    raise ApiError(
        409, message, details=[ErrorDetail(field="header.Idempotency-Key", message=message)]
    )


async def _wait_until_settled(
    state: AppState, principal: Principal, run: RunRecord, timeout_s: float
) -> RunRecord:
    """The run once it has finished or waits for a person, or as it is after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.01
    while True:
        current = await state.store.get_run(run.id, principal.organization_id)
        if current is None:  # deleted meanwhile
            not_found("run", run.id)
        remaining = deadline - loop.time()
        if current.status in SETTLED_RUN_STATUSES or remaining <= 0:
            return current
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.2)


def _day_before(moment: datetime) -> datetime:
    try:
        return moment - timedelta(hours=24)
    except OverflowError:  # within a day of the first representable time
        return datetime.min.replace(tzinfo=UTC)


def _end_nodes(definition: dict[str, Any]) -> list[str]:
    """The `end` nodes, else the nodes without outgoing edges (as the engine's output)."""
    nodes = [n for n in definition.get("nodes") or [] if isinstance(n, dict)]
    ends = [str(n.get("id")) for n in nodes if n.get("type") == "end"]
    if ends:
        return ends
    sources = {e.get("from") for e in definition.get("edges") or [] if isinstance(e, dict)}
    return [str(n.get("id")) for n in nodes if n.get("id") not in sources]


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


def _json_text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


async def _event_stream(
    state: AppState, organization_id: UUID, run_id: UUID, after: int | None
) -> AsyncIterator[bytes]:
    """The run's events as SSE frames, polled until its terminal event has been sent."""
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield b": stream of run " + str(run_id).encode() + b"\n\n"
    while True:
        # Read the status first: if the run had finished by then, its terminal event was
        # committed with it, so the read that follows returns every event there will be.
        run = await state.store.get_run(run_id, organization_id)
        finished = run is None or run.status in FINISHED_RUN_STATUSES
        while True:
            events = await state.store.list_events(
                run_id, organization_id=organization_id, after_id=after, limit=MAX_EVENTS
            )
            if not events:
                break
            yield _frames(events)
            last_sent = loop.time()
            after = events[-1].id
            if any(event.type in TERMINAL_RUN_EVENTS for event in events):
                return
            if len(events) < MAX_EVENTS:
                break
        if finished:
            return  # resumed after the terminal event (or the run was deleted)
        if loop.time() - last_sent >= KEEP_ALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()
        await asyncio.sleep(EVENT_POLL_S)


def _frames(events: Iterable[Any]) -> bytes:
    return b"".join(
        b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), to_json(event))
        for event in events
    )


def _one_cursor(after: str | None, before: str | None) -> None:
    if after is not None and before is not None:
        invalid("query.before", "give at most one of after and before")


def _listing(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    return {"data": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
