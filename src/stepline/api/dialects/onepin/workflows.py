"""Onepin's workflow endpoints under /api/v1/workflows: list, create, get, replace (PUT),
patch, delete, duplicate and the files their runs referred to.

Onepin keeps a workflow's name and description beside its definition; stepline's
definition carries them, so a request's `name` and `description` are written into the
definition it saves: a PATCH of any of the three saves the latest definition so changed
(a new version if it changed), and the answer's `definition` always agrees with them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepline.api.auth import ReadKey, WriteKey
from stepline.api.dialects.onepin import models as m
from stepline.api.dialects.onepin import shapes
from stepline.api.dialects.onepin.envelope import answer, pagination
from stepline.api.dialects.onepin.models import failures
from stepline.api.dialects.onepin.params import Limit, Offset, WorkflowId, onepin_router
from stepline.api.errors import invalid
from stepline.api.state import StateDep
from stepline.records import WorkflowRecord
from stepline.service import Caller, ServiceContext, live_workflow
from stepline.service import onepin_reads as reads
from stepline.service import workflows as workflow_reads
from stepline.store.workflows import MAX_NAME_LENGTH

router = onepin_router()
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
COPY_SUFFIX = " (Copy)"


class WorkflowWrite(BaseModel):
    """A whole workflow: POST creates one, PUT replaces one."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = None
    definition: dict[str, Any] = Field(
        description="stepline's workflow definition (nodes, edges, inputs...); its own name "
        "and description are replaced by the fields beside it."
    )


class WorkflowPatch(BaseModel):
    """At least one of the fields."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = None
    definition: dict[str, Any] | None = None


def _definition(definition: dict[str, Any], name: str, description: str) -> dict[str, Any]:
    """The definition carrying the workflow's name and description (the description is
    written only where it differs, so that an unchanged workflow keeps its version)."""
    merged = {**definition, "name": name}
    if (definition.get("description") or "") != description:
        merged["description"] = description
    return merged


def _check_name(name: str | None) -> None:
    if name is not None and not name.strip():
        invalid("body.name", "a workflow name must not be blank")


async def workflow_view(
    ctx: ServiceContext,
    caller: Caller,
    workflow: WorkflowRecord,
    definition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stats = await reads.workflow_stats(ctx, caller, workflow.id)
    if definition is None:
        definition = await workflow_reads.latest_definition(ctx, workflow)
    return shapes.workflow_out(
        workflow,
        definition,
        runs_count=stats.runs_count,
        counts=stats.counts,
        last_run=stats.last_run,
    )


@router.get("", response_model=m.ListEnvelope[m.Workflow], summary="List workflows, newest first")
async def list_workflows(
    request: Request,
    state: StateDep,
    principal: ReadKey,
    offset: Offset = 0,
    limit: Limit = 20,
    search: Annotated[
        str | None, Query(max_length=MAX_NAME_LENGTH, description="In the name or description.")
    ] = None,
) -> Response:
    caller = principal.caller
    window = await reads.window_workflows(
        state.service, caller, offset=offset, limit=limit, search=search
    )
    definitions = await reads.latest_definitions(state.service, caller, window.workflows)
    items = [
        await workflow_view(state.service, caller, w, definitions.get(w.id, {}))
        for w in window.workflows
    ]
    return answer(
        request,
        items,
        pagination=pagination(request, offset=offset, limit=limit, total=window.total),
    )


@router.post(
    "",
    status_code=201,
    response_model=m.Envelope[m.Workflow],
    responses=failures(409),
    summary="Create a workflow",
)
async def create_workflow(
    request: Request, body: WorkflowWrite, state: StateDep, principal: WriteKey
) -> Response:
    _check_name(body.name)
    caller = principal.caller
    saved = await reads.create_named_workflow(
        state.service,
        caller,
        _definition(body.definition, body.name, body.description or ""),
        field="body.definition",
    )
    view = await workflow_view(state.service, caller, saved.workflow, saved.version.definition)
    return answer(request, view, 201)


@router.get(
    "/{workflow_id}",
    response_model=m.Envelope[m.Workflow],
    responses=failures(404),
    summary="Get a workflow",
)
async def get_workflow(
    request: Request, workflow_id: WorkflowId, state: StateDep, principal: ReadKey
) -> Response:
    caller = principal.caller
    workflow = await live_workflow(state.service, caller, workflow_id)
    return answer(request, await workflow_view(state.service, caller, workflow))


@router.put(
    "/{workflow_id}",
    response_model=m.Envelope[m.Workflow],
    responses=failures(404, 409),
    summary="Replace a workflow (a new version if it changed)",
)
async def replace_workflow(
    request: Request,
    workflow_id: WorkflowId,
    body: WorkflowWrite,
    state: StateDep,
    principal: WriteKey,
) -> Response:
    _check_name(body.name)
    caller = principal.caller
    definition = _definition(body.definition, body.name, body.description or "")
    saved = await reads.replace_definition(
        state.service, caller, workflow_id, definition, field="body.definition"
    )
    view = await workflow_view(state.service, caller, saved.workflow, saved.version.definition)
    return answer(request, view)


@router.patch(
    "/{workflow_id}",
    response_model=m.Envelope[m.Workflow],
    responses=failures(404, 409),
    summary="Change a workflow's name, description or definition",
)
async def patch_workflow(
    request: Request,
    workflow_id: WorkflowId,
    body: WorkflowPatch,
    state: StateDep,
    principal: WriteKey,
) -> Response:
    if body.name is None and body.description is None and body.definition is None:
        invalid("body", "give at least one of name, description and definition")
    _check_name(body.name)
    caller = principal.caller
    ctx = state.service
    workflow = await live_workflow(ctx, caller, workflow_id)
    base = body.definition
    if base is None:
        base = await workflow_reads.latest_definition(ctx, workflow)
    description = workflow.description if body.description is None else body.description
    definition = _definition(base, body.name or workflow.name, description)
    saved = await reads.replace_definition(
        ctx, caller, workflow_id, definition, field="body.definition"
    )
    view = await workflow_view(ctx, caller, saved.workflow, saved.version.definition)
    return answer(request, view)


@router.delete(
    "/{workflow_id}",
    status_code=204,
    response_class=Response,
    responses=failures(404),
    summary="Delete a workflow (its runs are kept)",
)
async def delete_workflow(
    workflow_id: WorkflowId, state: StateDep, principal: WriteKey
) -> Response:
    await reads.delete_workflow(state.service, principal.caller, workflow_id)
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/duplicate",
    status_code=201,
    response_model=m.Envelope[m.Workflow],
    responses=failures(404, 409),
    summary="Copy a workflow",
)
async def duplicate_workflow(
    request: Request, workflow_id: WorkflowId, state: StateDep, principal: WriteKey
) -> Response:
    caller = principal.caller
    original = await live_workflow(state.service, caller, workflow_id)
    name = original.name[: MAX_NAME_LENGTH - len(COPY_SUFFIX)] + COPY_SUFFIX
    saved = await reads.duplicate_workflow(state.service, caller, workflow_id, name=name)
    view = await workflow_view(state.service, caller, saved.workflow, saved.version.definition)
    return answer(request, view, 201)


@router.get(
    "/{workflow_id}/uploads",
    response_model=m.ListEnvelope[m.Upload],
    responses=failures(404),
    summary="Files the workflow's runs referred to",
)
async def list_uploads(
    request: Request,
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Response:
    files = await reads.workflow_uploads(state.service, principal.caller, workflow_id)
    items = [
        {
            "id": str(f.id),
            "filename": f.filename,
            "content_type": f.mime_type,
            "size": f.size,
            "created_at": shapes.timestamp(f.created_at),
        }
        for f in files[offset : offset + limit]
    ]
    return answer(
        request, items, pagination=pagination(request, offset=offset, limit=limit, total=len(files))
    )
