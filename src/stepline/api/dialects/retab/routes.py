"""Retab's paths (seed 004's and today's SDK's), thin callers of `stepline.service` whose
answers are `shapes` of the canonical records."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response

from stepline import service
from stepline.api.auth import ReadKey, RunKey
from stepline.api.dialects.retab import shapes
from stepline.api.dialects.retab.errors import error_docs
from stepline.api.dialects.retab.models import CancelledRun, Run, SeedStep, StepPage, TodayStep
from stepline.api.dialects.retab.requests import (
    CancelRequest,
    RunCreate,
    RunStart,
    located,
    run_inputs,
)
from stepline.api.dialects.retab.vocabulary import StepLifecycleStatus, step_status
from stepline.api.documents import DocumentRoute
from stepline.api.errors import invalid, one_direction
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.errors import NotFound
from stepline.records import FINISHED_RUN_STATUSES, RunRecord, RunStatus, StepRecord
from stepline.service import Caller, StepsQuery
from stepline.service.retab_reads import (
    input_files,
    run_names,
    step_by_record_id,
    version_number,
)

router = APIRouter(tags=["Retab dialect"], route_class=DocumentRoute)

MAX_LIMIT = 100
DEFAULT_LIMIT = 10

WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
RunId = Annotated[UUID, Path(description="The run's id.")]
_READ_ERRORS = error_docs(401, 403, 404, 422, 500)
_WRITE_ERRORS = error_docs(400, 401, 403, 404, 413, 422, 500)


async def _run_answer(state: StateDep, caller: Caller, run: RunRecord) -> dict[str, Any]:
    steps = await service.run_steps(state.service, caller, run.id)
    names = await run_names(state.service, caller, run)
    return shapes.run_view(
        run,
        workflow_name=names.workflow_name,
        workflow_version_id=names.workflow_version_id,
        steps=steps,
        documents=await input_files(state.service, caller, run.inputs),
    )


async def _start(
    state: StateDep,
    caller: Caller,
    workflow_id: UUID,
    body: RunStart,
    version: int | str | None = None,
) -> Response:
    # The workflow first: a document sent as a data: URL is stored as a file before the run.
    await service.live_workflow(state.service, caller, workflow_id)
    number = await version_number(state.service, workflow_id, version, "body.version")
    inputs = await run_inputs(state.service, caller, body)
    try:
        started = await service.start_run(
            state.service,
            caller,
            workflow_id,
            inputs,
            version=number,
            inputs_field="body.json_inputs",
        )
    except service.InvalidRunInputs as exc:
        raise located(exc, body) from None
    return json_response(await _run_answer(state, caller, started.run))


@router.post(
    "/v1/workflows/{workflow_id}/run",
    response_model=Run,
    responses=_WRITE_ERRORS,
    summary="Run a workflow (seed 004): the run, status running",
)
async def run_workflow(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: RunKey,
    body: Annotated[RunStart | None, Body()] = None,
) -> Response:
    return await _start(state, principal.caller, workflow_id, body or RunStart())


@router.post(
    "/v1/workflows/runs",
    response_model=Run,
    responses=_WRITE_ERRORS,
    summary="Start a run (today's SDK)",
)
async def create_run(
    state: StateDep, principal: RunKey, body: Annotated[RunCreate, Body()]
) -> Response:
    return await _start(state, principal.caller, body.workflow_id, body, body.version)


@router.get(
    "/v1/workflows/runs/{run_id}",
    response_model=Run,
    responses=_READ_ERRORS,
    summary="A run, with seed 004's fields and today's",
)
async def get_run(run_id: RunId, state: StateDep, principal: ReadKey) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id)
    return json_response(await _run_answer(state, caller, run))


@router.post(
    "/v1/workflows/runs/{run_id}/cancel",
    response_model=CancelledRun,
    responses=_WRITE_ERRORS,
    summary="Cancel a run (idempotent: a finished run comes back unchanged)",
)
async def cancel_run(
    run_id: RunId,
    state: StateDep,
    principal: RunKey,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id)
    cancelled = await service.cancel_run(state.service, caller, run.workflow_id, run_id)
    if cancelled.status is RunStatus.cancelled:
        outcome = "cancelled"
    elif cancelled.status in FINISHED_RUN_STATUSES:
        outcome = "cancellation_failed"  # it ended before the request: unchanged
    else:
        outcome = "cancellation_requested"
    view = await _run_answer(state, caller, cancelled)
    return json_response({"run": view, "cancellation_status": outcome})


@router.get(
    "/v1/workflows/runs/{run_id}/steps",
    response_model=list[SeedStep],
    responses=_READ_ERRORS,
    summary="Every step of a run in execution order (seed 004)",
)
async def list_run_steps(run_id: RunId, state: StateDep, principal: ReadKey) -> Response:
    steps = await service.run_steps(state.service, principal.caller, run_id)
    return json_response([shapes.seed_step(step) for step in steps])


@router.get(
    "/v1/workflows/steps",
    response_model=StepPage,
    responses=_READ_ERRORS,
    summary="A page of a run's steps in execution order (today's SDK)",
)
async def list_steps(
    state: StateDep,
    principal: ReadKey,
    run_id: Annotated[UUID, Query(description="The run whose steps to list.")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Steps per page.")] = DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(description="`list_metadata.after` of a page: the page after it.")
    ] = None,
    before: Annotated[
        str | None, Query(description="`list_metadata.before` of a page: the page before it.")
    ] = None,
    block_id: Annotated[str | None, Query(description="Only this block's steps.")] = None,
    step_id: Annotated[str | None, Query(description="Only the step of this step_id.")] = None,
    status: Annotated[
        list[StepLifecycleStatus] | None,
        Query(description="Only steps of this lifecycle status (one at a time)."),
    ] = None,
    block_type: Annotated[
        list[str] | None, Query(description="Not supported: refused with a 422.")
    ] = None,
) -> Response:
    one_direction(after, before)
    if block_type:
        invalid("query.block_type", "filtering by block_type is not supported; use block_id")
    if status and len(status) > 1:
        invalid("query.status", "give one status at a time")
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id)
    if step_id is not None:
        return json_response(await _one_step_page(state, caller, run_id, step_id, block_id))
    query = StepsQuery(
        limit=limit,
        after=after,
        before=before,
        node_id=block_id,
        status=step_status(status[0]) if status else None,
        include_io=True,
    )
    page = await service.step_documents(state.service, caller, run.workflow_id, run.id, query)
    steps = [StepRecord.model_validate_json(document) for document in page.items]
    return json_response(shapes.step_list(steps, page.next_cursor, page.prev_cursor))


async def _one_step_page(
    state: StateDep, caller: Caller, run_id: UUID, step_id: str, block_id: str | None
) -> dict[str, Any]:
    try:
        step = await service.step_of(state.service, caller, run_id, step_id)
    except NotFound:
        return shapes.step_list([], None, None)
    matches = step.step_id == step_id and block_id in (None, step.node_id)
    return shapes.step_list([step] if matches else [], None, None)


@router.get(
    "/v1/workflows/steps/{step_id}",
    response_model=TodayStep,
    responses=_READ_ERRORS,
    summary="One step (today's SDK): by its step_id and run_id, or by its record's id",
)
async def get_step(
    step_id: Annotated[str, Path(description="The step's step_id, or its record's id.")],
    state: StateDep,
    principal: ReadKey,
    run_id: Annotated[
        UUID | None,
        Query(description="The step's run: needed unless step_id is the record's id."),
    ] = None,
) -> Response:
    caller = principal.caller
    if run_id is not None:
        await service.run_of(state.service, caller, run_id)
        step = await service.step_of(state.service, caller, run_id, step_id)
        return json_response(shapes.today_step(step))
    try:
        record_id = UUID(step_id)
    except ValueError:
        invalid("query.run_id", "required to find a step by its step_id (unique within its run)")
    step = await step_by_record_id(state.service, caller, record_id)
    return json_response(shapes.today_step(step))
