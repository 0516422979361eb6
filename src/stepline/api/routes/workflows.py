"""/v1/workflows: create, list, read, change, delete, duplicate and validate workflows.

A workflow's name is unique among the live workflows of its workspace (or of its
organization, for those of no workspace), so creating, uploading, renaming (PATCH, or PUT
with a new name) or duplicating onto a name in use is a 409 that names the holder, even
when two requests race for it (the database decides). A client that wants "create or
update" looks the name up with `GET /v1/workflows?name=` and PUTs.
Definitions are validated against the server's node kinds before anything is stored;
a bad one is a 422 with one detail per problem, each naming its JSON path in the body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

from fastapi import APIRouter, Body, File, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepline import service
from stepline.api.auth import Principal, ReadKey, WriteKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import (
    ApiError,
    ErrorDetail,
    error_responses,
    invalid,
    not_found,
    one_direction,
)
from stepline.api.models import ListResponse, WorkflowOut
from stepline.api.responses import json_response
from stepline.api.state import AppState, StateDep
from stepline.api.storable_text import refuse, unstorable_text
from stepline.documents import DocumentError, check_definition
from stepline.documents.json_text import parse_json
from stepline.records import WorkflowRecord, WorkflowVersion
from stepline.service import workflows as workflow_verbs
from stepline.spec.loader import WorkflowFileError, parse_workflow_text
from stepline.spec.validate import ValidationIssue
from stepline.store import SavedWorkflow, WorkflowNameTakenError, WorkflowNotFoundError
from stepline.store.paging import MAX_PAGE_SIZE, Page
from stepline.store.types import MAX_INT
from stepline.store.workflows import MAX_NAME_LENGTH

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=DocumentRoute)

_DEFINITION_DOC = (
    "A workflow definition (name, nodes, edges, ...); `stepline schema` prints its JSON Schema."
)
Definition = Annotated[dict[str, Any], Body(description=_DEFINITION_DOC)]
WorkflowId = Annotated[UUID, Path(description="The workflow's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]


# --- request and response shapes ------------------------------------------------------------


class WorkflowPatch(BaseModel):
    """Metadata to change; the definition and its versions stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = None


class DuplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="The copy's name; default '<name> (copy)', numbered if taken.",
    )


class IssueOut(BaseModel):
    path: str = Field(description="JSON path in the definition, e.g. $.nodes[2].config.url.")
    message: str
    node_id: str | None = None
    code: str = Field(description="structure, unknown_type, cycle, unknown_name, ...")


class ValidationReport(BaseModel):
    valid: bool
    errors: list[IssueOut]


class DiagramNode(BaseModel):
    id: str
    type: str
    label: str
    status: str | None = Field(description="The node's step status in the latest run, if any.")
    parent: str | None = Field(
        default=None, description="The loop whose body holds this node; null at the top."
    )


class DiagramEdge(BaseModel):
    source: str = Field(alias="from", description="The upstream node's id.")
    target: str = Field(alias="to", description="The downstream node's id.")
    handle: str | None = Field(default=None, description="The source's output branch, if any.")


class Diagram(BaseModel):
    nodes: list[DiagramNode]
    edges: list[DiagramEdge]
    run_id: UUID | None = Field(description="The latest run, whose statuses are shown.")


# --- routes ---------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=WorkflowOut,
    responses=error_responses(403, 409, 413),
    summary="Create a workflow",
)
async def create_workflow(definition: Definition, state: StateDep, principal: WriteKey) -> Response:
    saved = await _create(state, principal, definition, field="body")
    return _created(saved)


@router.post(
    "/upload",
    status_code=201,
    response_model=WorkflowOut,
    responses=error_responses(403, 409, 413),
    summary="Create a workflow from a JSON or YAML file",
)
async def upload_workflow(
    file: Annotated[UploadFile, File(description="A .json, .yaml or .yml workflow file.")],
    state: StateDep,
    principal: WriteKey,
) -> Response:
    filename = file.filename or "workflow.yaml"
    raw = await file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        invalid("body.file", f"{filename} is not UTF-8 text")
    try:
        definition = parse_workflow_text(text, filename=filename, limits=state.limits)
    except WorkflowFileError as exc:
        if exc.too_large:
            raise ApiError(
                413, str(exc), details=[ErrorDetail(field="body.file", message=str(exc))]
            ) from None
        invalid("body.file", str(exc))
    found = unstorable_text(definition, "body.file")
    if found is not None:
        raise refuse(*found)
    saved = await _create(state, principal, definition, field="body.file")
    return _created(saved)


@router.post(
    "/validate",
    response_model=ValidationReport,
    responses=error_responses(413),
    summary="Check a definition without saving it (always 200)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": _DEFINITION_DOC,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def validate_definition(request: Request, state: StateDep, principal: ReadKey) -> Response:
    # The body is read here rather than declared, so that even a body that is not JSON
    # is a report of problems (200) instead of a request error.
    raw = await request.body()
    try:
        document = parse_json(raw, max_depth=state.limits.max_depth)
        check_definition(document, state.limits)
    except DocumentError as exc:
        issue = ValidationIssue(path=exc.path, message=exc.reason, code="limit")
        return json_response(_report([issue]))
    except (ValueError, UnicodeDecodeError) as exc:
        issue = ValidationIssue(path="$", message=f"the body is not JSON: {exc}", code="json")
        return json_response(_report([issue]))
    issues = await service.validate_definition(state.service, document)
    return json_response(_report(issues))


@router.get(
    "",
    response_model=ListResponse[WorkflowOut],
    summary="List workflows, newest first",
)
async def list_workflows(
    state: StateDep,
    principal: ReadKey,
    limit: Limit = 50,
    after: After = None,
    before: Before = None,
    name: Annotated[str | None, Query(description="Only the workflow of this name.")] = None,
) -> Response:
    _one_cursor(after, before)
    found = await workflow_verbs.page_workflows(
        state.service, principal.caller, name=name, limit=limit, after=after, before=before
    )
    page = found.page
    items = [_workflow_out(w, found.definitions.get(w.id, {})) for w in page.items]
    return json_response(_listing(page, items))


@router.get(
    "/{workflow_id}",
    response_model=WorkflowOut,
    responses=error_responses(404),
    summary="Get a workflow with its latest definition",
)
async def get_workflow(workflow_id: WorkflowId, state: StateDep, principal: ReadKey) -> Response:
    workflow = await service.live_workflow(state.service, principal.caller, workflow_id)
    return json_response(await _with_definition(state, workflow))


@router.put(
    "/{workflow_id}",
    response_model=WorkflowOut,
    responses=error_responses(403, 404, 409, 413),
    summary="Replace the definition (a new version if it changed)",
)
async def replace_workflow(
    workflow_id: WorkflowId, definition: Definition, state: StateDep, principal: WriteKey
) -> Response:
    try:
        saved = await workflow_verbs.save_workflow(
            state.service, principal.caller, definition, workflow_id=workflow_id
        )
    except WorkflowNotFoundError:
        not_found("workflow", workflow_id)  # deleted meanwhile
    except WorkflowNameTakenError as exc:  # a new name in the definition
        _name_taken(exc)
    return json_response(_workflow_out(saved.workflow, saved.version.definition))


@router.patch(
    "/{workflow_id}",
    response_model=WorkflowOut,
    responses=error_responses(403, 404, 409, 413),
    summary="Rename a workflow or change its description",
)
async def patch_workflow(
    workflow_id: WorkflowId, patch: WorkflowPatch, state: StateDep, principal: WriteKey
) -> Response:
    try:
        workflow = await workflow_verbs.patch_workflow(
            state.service,
            principal.caller,
            workflow_id,
            name=patch.name,
            description=patch.description,
        )
    except WorkflowNameTakenError as exc:
        _name_taken(exc)
    return json_response(await _with_definition(state, workflow))


@router.delete(
    "/{workflow_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404),
    summary="Delete a workflow (its runs are kept)",
)
async def delete_workflow(
    workflow_id: WorkflowId, state: StateDep, principal: WriteKey
) -> Response:
    await workflow_verbs.delete_workflow(state.service, principal.caller, workflow_id)
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/duplicate",
    status_code=201,
    response_model=WorkflowOut,
    responses=error_responses(403, 404, 409, 413),
    summary="Copy a workflow's latest definition into a new workflow",
)
async def duplicate_workflow(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: WriteKey,
    body: Annotated[DuplicateRequest | None, Body()] = None,
) -> Response:
    name = body.name if body is not None else None
    try:
        saved = await workflow_verbs.duplicate_workflow(
            state.service, principal.caller, workflow_id, name=name
        )
    except WorkflowNameTakenError as exc:
        _name_taken(exc)
    return _created(saved)


@router.get(
    "/{workflow_id}/versions",
    response_model=ListResponse[WorkflowVersion],
    responses=error_responses(404),
    summary="List a workflow's versions, newest first",
)
async def list_versions(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    limit: Limit = 50,
    after: After = None,
    before: Before = None,
) -> Response:
    _one_cursor(after, before)
    page = await workflow_verbs.page_versions(
        state.service, principal.caller, workflow_id, limit=limit, after=after, before=before
    )
    return json_response(_listing(page, page.items))


@router.get(
    "/{workflow_id}/versions/{version}",
    response_model=WorkflowVersion,
    responses=error_responses(404),
    summary="Get one version of a workflow",
)
async def get_version(
    workflow_id: WorkflowId,
    version: Annotated[int, Path(ge=1, le=MAX_INT, description="The version number (1, 2, ...).")],
    state: StateDep,
    principal: ReadKey,
) -> Response:
    found = await workflow_verbs.version_of(state.service, principal.caller, workflow_id, version)
    return json_response(found)


@router.get(
    "/{workflow_id}/diagram",
    response_model=Diagram,
    responses={
        **error_responses(404),
        200: {
            "description": "format=mermaid: a Mermaid flowchart; format=json: nodes and edges "
            "with the latest run's step statuses.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
    summary="The workflow's graph as Mermaid text or JSON",
)
async def get_diagram(
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    format: Annotated[Literal["mermaid", "json"], Query(description="mermaid or json")] = (
        "mermaid"
    ),
) -> Response:
    workflow = await service.live_workflow(state.service, principal.caller, workflow_id)
    definition = await workflow_verbs.latest_definition(state.service, workflow)
    nodes, edges = _graph_of(definition)
    if format == "mermaid":
        return Response(_mermaid(nodes, edges), media_type="text/plain; charset=utf-8")
    latest = await workflow_verbs.latest_run_statuses(state.service, principal.caller, workflow_id)
    diagram = {
        "nodes": [
            node.model_copy(update={"status": latest.statuses.get(node.id)}) for node in nodes
        ],
        "edges": [edge.model_dump(by_alias=True) for edge in edges],
        "run_id": latest.run_id,
    }
    return json_response(diagram)


# --- helpers -------------------------------------------------------------------------------


async def _create(
    state: AppState, principal: Principal, definition: dict[str, Any], *, field: str
) -> SavedWorkflow:
    try:
        return await workflow_verbs.create_workflow(
            state.service, principal.caller, definition, field=field
        )
    except WorkflowNameTakenError as exc:
        _name_taken(exc)


def _name_taken(exc: WorkflowNameTakenError) -> NoReturn:
    message = f"{exc}; rename it, or change that workflow with PUT /v1/workflows/{exc.holder}"
    raise ApiError(409, message, details=[ErrorDetail(field="body.name", message=str(exc))])


def _created(saved: SavedWorkflow) -> Response:
    body = _workflow_out(saved.workflow, saved.version.definition)
    location = f"{router.prefix}/{saved.workflow.id}"
    return json_response(body, 201, headers={"Location": location})


def _workflow_out(workflow: WorkflowRecord, definition: dict[str, Any]) -> WorkflowOut:
    # Built without validation: both parts come from the store and are valid already.
    return WorkflowOut.model_construct(**dict(workflow), definition=definition)


async def _with_definition(state: AppState, workflow: WorkflowRecord) -> WorkflowOut:
    definition = await workflow_verbs.latest_definition(state.service, workflow)
    return _workflow_out(workflow, definition)


def _one_cursor(after: str | None, before: str | None) -> None:
    one_direction(after, before)


def _listing(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    return {"data": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}


def _report(issues: list[ValidationIssue]) -> ValidationReport:
    errors = [
        IssueOut(path=i.path, message=i.message, node_id=i.node_id, code=i.code) for i in issues
    ]
    return ValidationReport(valid=not issues, errors=errors)


# --- diagrams ------------------------------------------------------------------------------


def _graph_of(
    definition: dict[str, Any], parent: str | None = None
) -> tuple[list[DiagramNode], list[DiagramEdge]]:
    """The nodes and edges of a stored definition (validated when it was saved), loop
    bodies included: a body's nodes name their loop as `parent`."""
    nodes: list[DiagramNode] = []
    edges: list[DiagramEdge] = []
    for node in definition.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        node_id = str(node.get("id"))
        nodes.append(
            DiagramNode(
                id=node_id,
                type=str(node.get("type")),
                label=str(node.get("label") or node.get("id")),
                status=None,
                parent=parent,
            )
        )
        body = node.get("body")
        if isinstance(body, dict):
            inner_nodes, inner_edges = _graph_of(body, node_id)
            nodes += inner_nodes
            edges += inner_edges
    for edge in definition.get("edges") or []:
        if isinstance(edge, dict):
            edges.append(
                DiagramEdge.model_validate(
                    {
                        "from": str(edge.get("from")),
                        "to": str(edge.get("to")),
                        "handle": None if edge.get("handle") is None else str(edge.get("handle")),
                    }
                )
            )
    return nodes, edges


def _mermaid(nodes: list[DiagramNode], edges: list[DiagramEdge]) -> str:
    """A `flowchart TD` with every node and edge; an edge's handle is its label.

    Node ids are numbered (n0, n1, ...) because Mermaid reserves words such as `end` and
    reads some id spellings as edge syntax; each node's box shows its label, id and type.
    A loop's body is a subgraph (`n<i>_body`) that its loop points to with a dotted arrow.
    """
    ids = {node.id: f"n{index}" for index, node in enumerate(nodes)}
    children: dict[str | None, list[DiagramNode]] = {}
    for node in nodes:
        children.setdefault(node.parent, []).append(node)
    lines = ["flowchart TD"]

    def place(parent: str | None, indent: str) -> None:
        for node in children.get(parent, []):
            title = node.label if node.label == node.id else f"{node.label} ({node.id})"
            lines.append(f'{indent}{ids[node.id]}["{_text(title)}<br/>{_text(node.type)}"]')
            if node.id in children:
                body = f"{ids[node.id]}_body"
                lines.append(f'{indent}subgraph {body}["body of {_text(node.id)}"]')
                place(node.id, indent + "    ")
                lines.append(f"{indent}end")
                lines.append(f'{indent}{ids[node.id]} -.->|"each iteration"| {body}')

    place(None, "    ")
    for edge in edges:
        source = ids.get(edge.source, edge.source)
        target = ids.get(edge.target, edge.target)
        arrow = "-->" if edge.handle is None else f'-->|"{_text(edge.handle)}"|'
        lines.append(f"    {source} {arrow} {target}")
    return "\n".join(lines) + "\n"


# Mermaid entity codes for what would end a quoted label; '#' first, as the codes hold it.
_MERMAID_ESCAPES = (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"))


def _text(value: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    for char, code in _MERMAID_ESCAPES:
        value = value.replace(char, code)
    return value
