"""Onepin's download endpoints: a completed run's export (or one node's part of it) as a
short-lived signed link, and the route that link opens (`links` says how it is signed).

`GET .../runs/{run_id}/download` and `GET .../runs/{run_id}/nodes/{node_id}/download`
answer `{url, filename, expires_at}`, or 409 while the run has not completed. The `url`
is `GET .../runs/{run_id}/export?...&signature=...`: a JSON document (the run and its
steps, or the node's steps), downloadable without an API key until the link expires.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Path, Query, Request
from fastapi.responses import Response

from stepline import service
from stepline.api.auth import ReadKey
from stepline.api.dialects.onepin import models as m
from stepline.api.dialects.onepin import shapes
from stepline.api.dialects.onepin.envelope import answer
from stepline.api.dialects.onepin.links import LINK_KEY_PURPOSE, Export, LinkSigner, expiry
from stepline.api.dialects.onepin.models import failures
from stepline.api.dialects.onepin.params import RunId, WorkflowId, onepin_router
from stepline.api.dialects.onepin.runs import runs_out
from stepline.api.errors import ApiError
from stepline.api.responses import to_json
from stepline.api.state import AppState, StateDep
from stepline.errors import Conflict, NotFound
from stepline.records import RunStatus, utcnow
from stepline.secrets.cipher import derived_key
from stepline.service import Caller
from stepline.service import workflows as workflow_reads
from stepline.store.types import MAX_BIGINT

router = onepin_router()

NodeId = Annotated[str, Path(max_length=128, description="The node's id in the workflow.")]
EXPORT_ROUTE = "onepin_export"


def signer_of(request: Request) -> LinkSigner:
    """The link signer, its key derived from the secrets key: a link one API replica
    issued opens on every replica that shares STEPLINE_SECRETS_KEY, and after a restart."""
    signer: LinkSigner | None = getattr(request.app.state, "onepin_links", None)
    if signer is None:
        state: AppState = request.app.state.stepline
        signer = LinkSigner(derived_key(state.settings, LINK_KEY_PURPOSE))
        request.app.state.onepin_links = signer
    return signer


async def _link(
    request: Request,
    state: AppState,
    caller: Caller,
    workflow_id: UUID,
    run_id: UUID,
    node_id: str | None,
) -> dict[str, Any]:
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    if run.status is not RunStatus.completed:
        status = shapes.RUN_STATUS[run.status]
        raise Conflict(f"run {run_id} is {status}: its export is ready once it has completed")
    if node_id is not None:
        definition = await workflow_reads.pinned_definition(state.service, run)
        if node_id not in shapes.node_labels(definition):
            raise NotFound(f"node {node_id!r} is not in the workflow of run {run_id}")
    export = Export(
        caller.organization_id,
        caller.workspace_id,
        workflow_id,
        run_id,
        node_id,
        expiry(utcnow()),
    )
    query: dict[str, Any] = {
        "organization_id": str(export.organization_id),
        "expires": export.expires,
        "signature": signer_of(request).sign(export),
    }
    if export.workspace_id is not None:
        query["workspace_id"] = str(export.workspace_id)
    if node_id is not None:
        query["node_id"] = node_id
    url = request.url_for(EXPORT_ROUTE, workflow_id=workflow_id, run_id=run_id)
    suffix = f"-{node_id}" if node_id is not None else ""
    return {
        "url": str(url.include_query_params(**query)),
        "filename": f"run-{run_id}{suffix}.json",
        "expires_at": shapes.timestamp(export.expires_at),
    }


@router.get(
    "/{workflow_id}/runs/{run_id}/download",
    response_model=m.Envelope[m.DownloadLink],
    responses=failures(404, 409),
    summary="A signed link to the run's export",
)
async def download_run(
    request: Request, workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    link = await _link(request, state, principal.caller, workflow_id, run_id, None)
    return answer(request, link)


@router.get(
    "/{workflow_id}/runs/{run_id}/nodes/{node_id}/download",
    response_model=m.Envelope[m.DownloadLink],
    responses=failures(404, 409),
    summary="A signed link to one node's part of the run's export",
)
async def download_run_node(
    request: Request,
    workflow_id: WorkflowId,
    run_id: RunId,
    node_id: NodeId,
    state: StateDep,
    principal: ReadKey,
) -> Response:
    link = await _link(request, state, principal.caller, workflow_id, run_id, node_id)
    return answer(request, link)


@router.get(
    "/{workflow_id}/runs/{run_id}/export",
    name=EXPORT_ROUTE,
    response_model=m.Export,
    responses=failures(403, 404),
    summary="The export a signed download link opens (no API key: the signature is the key)",
)
async def export_run(
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    request: Request,
    organization_id: Annotated[UUID, Query()],
    expires: Annotated[int, Query(ge=0, le=MAX_BIGINT)],
    signature: Annotated[str, Query(max_length=128)],
    workspace_id: Annotated[UUID | None, Query()] = None,
    node_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    export = Export(organization_id, workspace_id, workflow_id, run_id, node_id, expires)
    if not signer_of(request).valid(export, signature, utcnow()):
        raise ApiError(403, "the download link is not valid, or it has expired: ask for a new one")
    caller = Caller(organization_id, workspace_id)
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    steps = [
        step
        for step in await service.run_steps(state.service, caller, run_id, workflow_id)
        if node_id is None or step.node_id == node_id
    ]
    definition = await workflow_reads.pinned_definition(state.service, run)
    document: dict[str, Any] = {
        "run": (await runs_out(state, caller, [run]))[0],
        "node_id": node_id,
        "steps": shapes.steps_out(steps, definition, include_result=True),
    }
    suffix = f"-{node_id}" if node_id is not None else ""
    filename = f"run-{run_id}{suffix}.json"
    return Response(
        to_json(document),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
