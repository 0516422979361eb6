"""Onepin's run endpoints under /api/v1/workflows/{workflow_id}/runs: list, start, summarise,
preview, read (whole, light, overview, data), list steps and cancel. Thin: parse, call
`stepline.service`, shape with `shapes`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepline import service
from stepline.api.auth import ReadKey, RunKey
from stepline.api.dialects.onepin import models as m
from stepline.api.dialects.onepin import shapes
from stepline.api.dialects.onepin.envelope import answer, pagination
from stepline.api.dialects.onepin.models import failures
from stepline.api.dialects.onepin.params import Limit, Offset, RunId, WorkflowId, onepin_router
from stepline.api.errors import invalid
from stepline.api.state import AppState, StateDep
from stepline.api.times import UtcDatetime
from stepline.records import RunRecord, RunStatus, utcnow
from stepline.service import Caller
from stepline.service import onepin_reads as reads
from stepline.service import workflows as workflow_reads

router = onepin_router()


class RunStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The run's inputs, checked against the workflow's schema."
    )


def parse_statuses(raw: str | None) -> list[RunStatus]:
    """`pending,running` -> stepline's statuses; a 422 naming an unknown one."""
    if raw is None or not raw.strip():
        return []
    found: list[RunStatus] = []
    for part in raw.split(","):
        name = part.strip()
        if name not in shapes.RUN_STATUS_FILTER:
            known = ", ".join(shapes.ONEPIN_RUN_STATUSES)
            invalid("query.status", f"unknown status {name!r}; known: {known}")
        found.append(shapes.RUN_STATUS_FILTER[name])
    return found


async def runs_out(state: AppState, caller: Caller, runs: list[RunRecord]) -> list[dict[str, Any]]:
    tallies = await reads.node_tallies(state.service, caller, runs)
    return [
        shapes.run_out(
            run,
            total_nodes=tallies[run.id].total_nodes,
            finished_nodes=tallies[run.id].finished_nodes,
        )
        for run in runs
    ]


@router.get(
    "/{workflow_id}/runs",
    response_model=m.ListEnvelope[m.Run],
    responses=failures(404),
    summary="List a workflow's runs, newest first",
)
async def list_runs(
    request: Request,
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    offset: Offset = 0,
    limit: Limit = 20,
    status: Annotated[
        str | None,
        Query(
            description="Comma-separated: pending, running, completed, failed, cancelled, paused."
        ),
    ] = None,
) -> Response:
    statuses = parse_statuses(status)
    caller = principal.caller
    window = await service.window_runs(
        state.service, caller, workflow_id, offset=offset, limit=limit, statuses=statuses
    )
    return answer(
        request,
        await runs_out(state, caller, window.runs),
        pagination=pagination(request, offset=offset, limit=limit, total=window.total),
    )


@router.post(
    "/{workflow_id}/runs",
    status_code=202,
    response_model=m.Envelope[m.Run],
    responses=failures(404, 409),
    summary="Start a run (202 with the run)",
)
async def start_run(
    request: Request,
    workflow_id: WorkflowId,
    state: StateDep,
    principal: RunKey,
    body: Annotated[RunStart | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A repeated key (per organization) answers with the run it started.",
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
    run = await service.run_of(state.service, caller, started.run.id, workflow_id)
    return answer(request, (await runs_out(state, caller, [run]))[0], 202)


@router.get(
    "/{workflow_id}/runs/summary",
    response_model=m.Envelope[m.RunsSummary],
    responses=failures(404),
    summary="Counts, pass rate and mean duration of runs",
)
async def runs_summary(
    request: Request,
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    since: Annotated[
        UtcDatetime | None,
        Query(alias="from", description="Runs created at or after this time; default: all."),
    ] = None,
    until: Annotated[
        UtcDatetime | None,
        Query(alias="to", description="Runs created before this time; default: now."),
    ] = None,
) -> Response:
    until = until or utcnow()
    since = since or reads.EVER
    if since >= until:
        invalid("query.from", "the window must start before it ends (from < to)")
    summary = await reads.summarize_runs(
        state.service, principal.caller, workflow_id, since=since, until=until
    )
    data = shapes.summary_out(
        summary.counts,
        summary.total,
        summary.pass_rate,
        summary.average_duration_seconds,
        since=since,
        until=until,
    )
    return answer(request, data)


@router.post(
    "/{workflow_id}/runs/preview",
    response_model=m.Envelope[m.RunPreview],
    responses=failures(404),
    summary="A dry run: what would run, nothing executed",
)
async def preview_run(
    request: Request,
    workflow_id: WorkflowId,
    state: StateDep,
    principal: ReadKey,
    body: Annotated[RunStart | None, Body()] = None,
) -> Response:
    preview = await reads.preview_run(
        state.service, principal.caller, workflow_id, body.inputs if body is not None else {}
    )
    data = {
        "workflow_id": str(workflow_id),
        "version": preview.version,
        "valid": not preview.issues,
        "errors": [{"field": d.field, "message": d.message} for d in preview.issues],
        "total_nodes": len(preview.nodes),
        "nodes": [
            {
                "order": position,
                "node_id": node.node_id,
                "node_type": node.node_type,
                "node_display_name": node.label,
                "parent_node_id": node.parent,
            }
            for position, node in enumerate(preview.nodes, start=1)
        ],
    }
    return answer(request, data)


@router.get(
    "/{workflow_id}/runs/{run_id}",
    response_model=m.Envelope[m.Run],
    responses=failures(404),
    summary="Get a run",
)
async def get_run(
    request: Request, workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    return answer(request, (await runs_out(state, caller, [run]))[0])


@router.get(
    "/{workflow_id}/runs/{run_id}/status",
    response_model=m.Envelope[m.RunLight],
    responses=failures(404),
    summary="A run's status (light)",
)
async def get_run_status(
    request: Request, workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    run = await service.run_of(state.service, principal.caller, run_id, workflow_id)
    return answer(request, shapes.run_status_out(run))


@router.get(
    "/{workflow_id}/runs/{run_id}/steps",
    response_model=m.Envelope[list[m.Step]],
    responses=failures(404),
    summary="List a run's steps (seed 002)",
)
async def get_run_steps(
    request: Request,
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    principal: ReadKey,
    include_result: Annotated[
        bool, Query(description="Include each step's result (else null; see has_result).")
    ] = False,
    node_type: Annotated[str | None, Query(description="Only steps of this node kind.")] = None,
    node_id: Annotated[str | None, Query(description="Only steps of this node.")] = None,
) -> Response:
    if node_type is not None and node_type not in state.kinds:
        known = ", ".join(sorted(state.kinds))
        invalid("query.node_type", f"unknown node type {node_type!r}; known: {known}")
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    steps = [
        step
        for step in await service.run_steps(state.service, caller, run_id, workflow_id)
        if (node_type is None or step.node_type == node_type)
        and (node_id is None or step.node_id == node_id)
    ]
    definition = await workflow_reads.pinned_definition(state.service, run)
    return answer(request, shapes.steps_out(steps, definition, include_result=include_result))


@router.get(
    "/{workflow_id}/runs/{run_id}/overview",
    response_model=m.Envelope[m.RunOverview],
    responses=failures(404),
    summary="A run and each node's state",
)
async def get_run_overview(
    request: Request, workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: ReadKey
) -> Response:
    caller = principal.caller
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    steps = await service.run_steps(state.service, caller, run_id, workflow_id)
    data = (await runs_out(state, caller, [run]))[0]
    data["node_states"] = [shapes.node_state(step) for step in steps]
    return answer(request, data)


@router.get(
    "/{workflow_id}/runs/{run_id}/data",
    response_model=m.ListEnvelope[dict[str, Any]],
    responses=failures(404),
    summary="The run's output rows",
)
async def get_run_data(
    request: Request,
    workflow_id: WorkflowId,
    run_id: RunId,
    state: StateDep,
    principal: ReadKey,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    run = await service.run_of(state.service, principal.caller, run_id, workflow_id)
    rows = shapes.output_rows(run.output)
    return answer(
        request,
        rows[offset : offset + limit],
        pagination=pagination(request, offset=offset, limit=limit, total=len(rows)),
    )


@router.post(
    "/{workflow_id}/runs/{run_id}/cancel",
    response_model=m.Envelope[m.Run],
    responses=failures(404),
    summary="Cancel a run (idempotent)",
)
async def cancel_run(
    request: Request, workflow_id: WorkflowId, run_id: RunId, state: StateDep, principal: RunKey
) -> Response:
    caller = principal.caller
    await service.cancel_run(state.service, caller, workflow_id, run_id)
    run = await service.run_of(state.service, caller, run_id, workflow_id)
    return answer(request, (await runs_out(state, caller, [run]))[0])
