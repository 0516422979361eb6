"""Trigify's execution endpoints, thin over `stepline.service`: parse, read, shape.

Seed 003 documents reading executions only (a list, and one with its steps); starting
and cancelling runs are not Trigify API calls, so they are not served here (the native
API has them: POST /v1/workflows/{id}/runs and .../runs/{run_id}/cancel).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from stepline import service
from stepline.api.auth import ReadKey
from stepline.api.dialects.trigify import shapes
from stepline.api.dialects.trigify.models import Execution, ExecutionList, Failure, Success
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.service.trigify_reads import run_trace

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 10_000_000
"""Far past any real history, and an offset the store can take (page_size x page < 2**31)."""

WorkflowId = Annotated[UUID, Path(alias="id", description="The workflow's id (a UUID).")]
RunId = Annotated[UUID, Path(alias="runId", description="The run's id (a UUID).")]

_FAILURES: dict[int | str, dict[str, Any]] = {
    status: {"model": Failure, "description": description}
    for status, description in {
        400: "A path id or query parameter is not valid (VALIDATION_ERROR).",
        401: "No API key (AUTH_REQUIRED), or an unknown, revoked or expired one (INVALID_API_KEY).",
        403: "The key lacks the read scope (FORBIDDEN).",
        404: "No such workflow or run in the key's organization (NOT_FOUND).",
        500: "The server failed (INTERNAL_ERROR).",
    }.items()
}

router = APIRouter(tags=["Trigify dialect"], responses=_FAILURES)


@router.get(
    "/v1/workflows/{id}/executions",
    response_model=Success[ExecutionList],
    summary="List a workflow's executions, newest first (Trigify)",
)
async def list_executions(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="From 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Executions per page, 1 to 100.")
    ] = DEFAULT_PAGE_SIZE,
) -> Response:
    window = await service.window_runs(
        state.service,
        principal.caller,
        workflow_id,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    listed = shapes.execution_list(window.runs, page=page, page_size=page_size, total=window.total)
    return json_response(Success(data=listed))


@router.get(
    "/v1/workflows/{id}/executions/{runId}",
    response_model=Success[Execution],
    summary="An execution with every step, in execution order (Trigify, seed 003)",
)
async def get_execution(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    trace = await run_trace(state.service, principal.caller, workflow_id, run_id)
    detail = shapes.execution(trace.run, trace.steps, trace.columns)
    return json_response(Success(data=detail))
