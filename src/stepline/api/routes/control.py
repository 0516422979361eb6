"""Human review, retry and replay: the routes that change the course of a run.

- `GET /v1/reviews` lists the steps waiting for a person's decision (oldest first),
  narrowed to the caller's workspace, and optionally to one workflow.
- `POST /v1/workflows/{workflow_id}/runs/{run_id}/steps/{step_id}/review` records the
  decision (`approved`, an edited `output`, a `comment`) and resumes the run. The same
  decision again answers 200 with `changed: false`; a different one is a 409.
- `POST .../runs/{run_id}/retry` continues a failed or cancelled run from its failed steps
  (a new attempt of the same run; completed steps are not run again); else a 409.
- `POST .../runs/{run_id}/replay` starts a new run linked to the original (`replay_of`)
  that reuses the original's outputs for every step upstream of `from_node`; its inputs
  are the original's with the given ones merged over them (top-level keys).

A run of another organization, of a workspace the key cannot see, or of another workflow
than the path's is a 404, as everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from stepline import service
from stepline.api.auth import ReadKey, RunKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, one_direction
from stepline.api.models import ListResponse, RunOut
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.records import StepRecord
from stepline.store.paging import MAX_PAGE_SIZE
from stepline.store.types import MAX_INT

reviews_router = APIRouter(prefix="/v1/reviews", tags=["reviews"], route_class=DocumentRoute)
runs_router = APIRouter(
    prefix="/v1/workflows/{workflow_id}/runs", tags=["runs"], route_class=DocumentRoute
)

MAX_COMMENT = 10_000

WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
RunId = Annotated[UUID, Path(description="The run's id.")]
StepKey = Annotated[
    str, Path(description="The step record's UUID (`id`), or its `step_id` string.")
]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]

# 403: an X-Workspace-Id outside the key's own workspace, or a key without the scope.
_RUN_ERRORS = error_responses(403, 404)


# --- request and response shapes ------------------------------------------------------------


class ReviewItem(StepRecord):
    """A step waiting for a decision: its record, and where to send the decision."""

    review_url: str = Field(
        description="POST `{approved, output?, comment?}` here to decide "
        "(/v1/workflows/{workflow_id}/runs/{run_id}/steps/{id}/review)."
    )


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: StrictBool = Field(
        description="true: the run continues; false: it follows the node's `rejected` "
        "handle if one is wired, else the step fails."
    )
    output: Any = Field(
        default=None,
        description="With approved: the edited output the step ends with (instead of the "
        "proposed one). Leave it out to keep the proposal; null is a value.",
    )
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class ReviewResult(BaseModel):
    """The decision as recorded, and the run as it is now."""

    changed: bool = Field(
        description="false when this same decision had already been recorded (nothing done)."
    )
    step: StepRecord
    run: RunOut


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_node: str = Field(
        min_length=1,
        description="A top-level node of the version replayed: it and everything not "
        "upstream of it run again; the steps upstream of it are copied from the original.",
    )
    inputs: dict[str, Any] | None = Field(
        default=None,
        description="Inputs merged over the original run's (each top-level key given "
        "replaces the original's, the others are kept); default: the original's.",
    )
    workflow_version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="The version to run; default: the original's.",
    )


# --- reviews ----------------------------------------------------------------------------------


@reviews_router.get(
    "",
    response_model=ListResponse[ReviewItem],
    responses=error_responses(403),
    summary="List the steps waiting for a person's review, oldest first",
)
async def list_reviews(
    state: StateDep,
    principal: ReadKey,
    workflow_id: Annotated[
        UUID | None, Query(description="Only reviews of this workflow's runs.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Reviews per page.")] = 100,
    after: After = None,
    before: Before = None,
) -> Response:
    one_direction(after, before)
    page = await state.store.runs.page_reviews(
        principal.organization_id,
        workspace_id=principal.workspace_id,
        workflow_id=workflow_id,
        limit=limit,
        after=after,
        before=before,
    )
    items = [
        ReviewItem(**dict(step), review_url=_review_url(step.workflow_id, step.run_id, step.id))
        for step in page.items
    ]
    return json_response(
        {"data": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
    )


@runs_router.post(
    "/{run_id}/steps/{step_id}/review",
    response_model=ReviewResult,
    responses=error_responses(403, 404, 409, 413),
    summary="Approve (optionally with an edited output) or reject a step under review",
)
async def review_step(
    workflow_id: WorkflowId,
    run_id: RunId,
    step_id: StepKey,
    body: ReviewRequest,
    state: StateDep,
    principal: RunKey,
) -> Response:
    review = await service.review_step(
        state.service,
        principal.caller,
        workflow_id,
        run_id,
        step_id,
        approved=body.approved,
        output=body.output if "output" in body.model_fields_set else service.PROPOSED,
        comment=body.comment,
    )
    return json_response(
        ReviewResult(changed=review.changed, step=review.step, run=RunOut.of(review.run))
    )


# --- retry and replay -------------------------------------------------------------------------


@runs_router.post(
    "/{run_id}/retry",
    status_code=202,
    response_model=RunOut,
    responses=error_responses(403, 404, 409),
    summary="Continue a failed or cancelled run from its failed steps",
)
async def retry_run(
    workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: RunKey
) -> Response:
    run = await service.retry_run(state.service, principal.caller, workflow_id, run_id)
    return json_response(RunOut.of(run), 202)


@runs_router.post(
    "/{run_id}/replay",
    status_code=201,
    response_model=RunOut,
    responses=error_responses(403, 404, 413),
    summary="Start a new run that reuses the original's outputs upstream of a node",
    description="The new run (`replay_of`: the original) copies the steps of every node "
    "upstream of `from_node` and runs the rest. Its inputs are the original run's with "
    '`inputs` merged over them at the top level: `{"amount": 90}` changes `amount` and '
    "keeps every other input of the original.",
)
async def replay_run(
    workflow_id: WorkflowId,
    run_id: RunId,
    body: Annotated[ReplayRequest, Body()],
    state: StateDep,
    principal: RunKey,
) -> Response:
    replay = await service.replay_run(
        state.service,
        principal.caller,
        workflow_id,
        run_id,
        from_node=body.from_node,
        inputs=body.inputs,
        workflow_version=body.workflow_version,
    )
    headers = {"Location": f"/v1/workflows/{workflow_id}/runs/{replay.id}"}
    return json_response(RunOut.of(replay), 201, headers=headers)


# --- helpers -------------------------------------------------------------------------------


def _review_url(workflow_id: UUID, run_id: UUID, step_id: UUID) -> str:
    return f"/v1/workflows/{workflow_id}/runs/{run_id}/steps/{step_id}/review"
