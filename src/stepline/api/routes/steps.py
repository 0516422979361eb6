"""/v1/workflows/{workflow_id}/runs/{run_id}/steps: a run's steps, and their fast lane.

A step is named in `/steps/{step_id}` by its record's UUID (`id`) or by its `step_id`
string (`fetch`, `loop.body[2]`); a UUID is tried as a record id first. A run of another
organization, of a workspace the key cannot see, or of another workflow than the path's
is a 404.

The hottest read, a page of a run's steps, is answered by `list_steps_fast` ahead of
FastAPI's routing when it can be (the app hands it to the request middleware).
"""

from __future__ import annotations

import json
import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.types import Scope

from stepline.api.auth import ReadKey, principal_of
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, one_direction
from stepline.api.models import ListResponse
from stepline.api.responses import json_response
from stepline.api.state import AppState, StateDep
from stepline.api.storable_text import parameter_problem
from stepline.records import StepRecord, StepStatus
from stepline.service import Caller, StepsQuery, get_step, step_documents
from stepline.store.paging import MAX_PAGE_SIZE, Page
from stepline.store.types import MAX_INT

router = APIRouter(
    prefix="/v1/workflows/{workflow_id}/runs", tags=["runs"], route_class=DocumentRoute
)

WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
RunId = Annotated[UUID, Path(description="The run's id.")]

# 403: an X-Workspace-Id outside the key's own workspace.
_RUN_ERRORS = error_responses(403, 404)


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
    after: Annotated[str | None, Query(description="A `next_cursor`: the page after it.")] = None,
    before: Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")] = None,
) -> Response:
    one_direction(after, before)
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
    page = await step_documents(state.service, principal.caller, workflow_id, run_id, query)
    return _page_response(page)


@router.get(
    "/{run_id}/steps/{step_id}",
    response_model=StepRecord,
    responses=_RUN_ERRORS,
    summary="Get one step, by its record id (UUID) or its step_id",
)
async def get_one_step(
    workflow_id: WorkflowId,
    run_id: RunId,
    step_id: Annotated[
        str, Path(description="The step record's UUID (`id`), or its `step_id` string.")
    ],
    state: StateDep,
    principal: ReadKey,
) -> Response:
    step = await get_step(state.service, principal.caller, workflow_id, run_id, step_id)
    return json_response(step)


# --- the fast lane -------------------------------------------------------------------------


class _StepsPath(BaseModel):
    workflow_id: UUID
    run_id: UUID


_STEPS_PATH = re.compile(r"/v1/workflows/([^/]+)/runs/([^/]+)/steps")


async def list_steps_fast(scope: Scope) -> Response | None:
    """`GET .../runs/{run_id}/steps` without FastAPI's routing and dependency solving,
    which cost more than the page itself; called first by the request middleware.

    It answers only a request the route would answer with 200, validated the same way
    (the same query model, key lookup, scope and workspace rules); for anything else (a
    bad parameter, key or cursor, an unknown run, a surprise) it gives None and the route
    answers, with its errors.
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
        caller: Caller = (await principal_of(request, state, "read")).caller
        page = await step_documents(state.service, caller, path.workflow_id, path.run_id, query)
    except Exception:  # the route will say what is wrong
        return None
    return _page_response(page)


def _page_response(page: Page[str]) -> Response:
    """The page of stored step documents, written as the listing without parsing them."""
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


def _json_text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)
