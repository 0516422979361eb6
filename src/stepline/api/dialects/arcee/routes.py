"""Arcee Orchestra's paths (below `/arcee`): thin callers of `stepline.service` whose
answers `shapes` and `diagram` make from the canonical records.

Arcee answers bare JSON: lists are arrays without paging metadata; the execution history
pages by `limit` (default 100) and `offset` (default 0), newest first.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response

from stepline import service
from stepline.api.auth import ReadKey, RunKey
from stepline.api.dialects.arcee.diagram import mermaid
from stepline.api.dialects.arcee.models import (
    ArceeDiagram,
    ArceeError,
    ArceeExecution,
    ArceeRun,
    ArceeStep,
    ArceeWorkflow,
)
from stepline.api.dialects.arcee.shapes import run_item, steps_view, workflow_item
from stepline.api.documents import DocumentRoute
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.records import utcnow
from stepline.service import arcee_reads
from stepline.store.paging import MAX_PAGE_SIZE
from stepline.store.types import MAX_BIGINT

_DESCRIPTIONS = {
    400: "The body is not UTF-8 JSON.",
    401: "No API key, or an unknown, revoked or expired one.",
    403: "The key lacks the scope (run, to execute), or X-Workspace-Id is not its workspace.",
    404: "No such workflow or run in the key's organization (and workspace).",
    413: "The body is larger than the server accepts.",
    422: "A path id, a query parameter or the inputs are not valid: `detail` lists each.",
}


def _failures(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ArceeError, "description": _DESCRIPTIONS[status]} for status in statuses
    }


router = APIRouter(
    tags=["Arcee dialect"], route_class=DocumentRoute, responses=_failures(401, 403, 422)
)

WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
RunId = Annotated[UUID, Path(description="The run's id (from the execute call).")]
Inputs = Annotated[
    dict[str, Any] | None,
    Body(description="The run's inputs, one key per input variable (none: an empty body)."),
]
STARTED = "Workflow execution started"


@router.get(
    "/workflows",
    response_model=list[ArceeWorkflow],
    summary="List available workflows, each with its graph",
    description="Every live workflow of the key's organization (and workspace), newest first.",
)
async def list_workflows(state: StateDep, principal: ReadKey) -> Response:
    found = await arcee_reads.all_workflows(state.service, principal.caller)
    return json_response([workflow_item(w.workflow, w.definition) for w in found])


@router.post(
    "/workflows/{workflow_id}/execute",
    response_model=ArceeExecution,
    responses=_failures(400, 404, 413),
    summary="Execute a workflow (asynchronously)",
    description='Queues a run; answers `{"message": "Workflow execution started", "run_id"}`.',
)
async def execute_workflow(
    workflow_id: WorkflowId, state: StateDep, principal: RunKey, inputs: Inputs = None
) -> Response:
    started = await service.start_run(
        state.service, principal.caller, workflow_id, inputs or {}, inputs_field="body"
    )
    return json_response({"message": STARTED, "run_id": str(started.run.id)})


@router.get(
    "/workflows/{workflow_id}/runs",
    response_model=list[ArceeRun],
    responses=_failures(404),
    summary="Execution history: the workflow's runs, newest first",
)
async def execution_history(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="How many runs (default 100).")
    ] = 100,
    offset: Annotated[
        int, Query(ge=0, le=MAX_BIGINT, description="How many of the newest to skip.")
    ] = 0,
) -> Response:
    found = await arcee_reads.runs_with_steps(
        state.service, principal.caller, workflow_id, offset=offset, limit=limit
    )
    now = utcnow()
    return json_response([run_item(r.run, r.steps, now) for r in found])


@router.get(
    "/workflows/{workflow_id}/runs/{run_id}",
    response_model=list[ArceeRun],
    responses=_failures(404),
    summary="One run (a one-element array, as Arcee answers)",
)
async def get_run(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    steps = await service.run_steps(state.service, caller, run_id, workflow_id)
    return json_response([run_item(run, steps, utcnow())])


@router.get(
    "/workflows/{workflow_id}/runs/{run_id}/steps",
    response_model=list[ArceeStep],
    responses=_failures(404),
    summary="The run's steps in execution order (seed 000)",
)
async def get_steps(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    steps = await service.run_steps(state.service, caller, run_id, workflow_id)
    return json_response(steps_view(run, steps, utcnow()))


@router.get(
    "/workflows/{workflow_id}/diagram",
    response_model=ArceeDiagram,
    responses=_failures(404),
    summary="The workflow's graph as Mermaid source",
    description='`{"diagram": "graph TD ..."}`, drawn from the latest definition.',
)
async def get_diagram(workflow_id: WorkflowId, state: StateDep, principal: ReadKey) -> Response:
    definition = await arcee_reads.latest_definition(state.service, principal.caller, workflow_id)
    return json_response({"diagram": mermaid(definition)})
