"""Starting and cancelling runs: the verbs behind `POST .../runs`, `stepline run` and
`POST .../runs/{id}/cancel`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from stepline.errors import Conflict, Detail, InvalidRequest, NotFound
from stepline.records import FINISHED_RUN_STATUSES, RunRecord, RunStatus
from stepline.service.context import Caller, ServiceContext
from stepline.service.files import check_file_references
from stepline.service.inputs import check_inputs_document, check_run_inputs, run_redactor
from stepline.service.lookup import live_workflow, run_of
from stepline.service.workflows import save_workflow
from stepline.store import DuplicateError, SavedWorkflow
from stepline.store.paging import Page
from stepline.store.runs import RunSummary

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_FIELD = "header.Idempotency-Key"


def concurrency_of(definition: dict[str, Any]) -> int | None:
    """The definition's `concurrency` (checked when it was saved; a version saved before
    it existed has none)."""
    value = definition.get("concurrency")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True, slots=True)
class Submission:
    """What `submit_run` did: the workflow as saved, and the run queued of it."""

    saved: SavedWorkflow
    run: RunRecord


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run as `start_run` left it, and whether an earlier request had started it."""

    run: RunRecord
    replayed: bool = False
    """The Idempotency-Key had started this run already: nothing new was queued."""


def checked_idempotency_key(raw: str | None) -> str | None:
    """The key, stripped; InvalidRequest unless it has 1 to 255 characters."""
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        message = f"must be 1 to {MAX_IDEMPOTENCY_KEY} non-blank characters"
        raise InvalidRequest(
            f"{IDEMPOTENCY_FIELD}: {message}", details=[Detail(IDEMPOTENCY_FIELD, message)]
        )
    return key


async def start_run(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    inputs: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    version: int | None = None,
    trigger: str = "api",
    inputs_field: str = "body.inputs",
) -> StartedRun:
    """Queue a run of the workflow's latest version (or of `version`), pinned to it, and wake
    the worker.

    The inputs must be a document within the limits and match the workflow's input schema;
    every secret the version reads must be set (a value of one in the inputs is recorded as
    `***`). A repeated `idempotency_key` (per organization, 1 to 255 characters) returns
    the run it started.
    """
    check_inputs_document(inputs, ctx.limits, inputs_field)
    key = checked_idempotency_key(idempotency_key)
    workflow = await live_workflow(ctx, caller, workflow_id)
    earlier = await _started_with(ctx, caller, workflow_id, key)
    if earlier is not None:
        return await _replayed(ctx, caller, earlier)
    number = version or workflow.latest_version
    pinned = await ctx.store.workflows.version(workflow.id, number)
    if pinned is None:
        raise NotFound(f"version {number} of workflow {workflow_id} not found")
    check_run_inputs(pinned.definition.get("inputs") or {"type": "object"}, inputs)
    await check_file_references(ctx, caller, inputs, inputs_field)
    workspace_id = caller.workspace_id or workflow.workspace_id
    redactor = await run_redactor(
        ctx.secrets, await ctx.secret_references(pinned), caller.organization_id, workspace_id
    )
    record = RunRecord(
        workflow_id=workflow.id,
        workflow_version=pinned.version,
        organization_id=caller.organization_id,
        workspace_id=workspace_id,
        user_id=caller.user_id,
        trigger=trigger,
        inputs=redactor.data(inputs),
        idempotency_key=key,
        concurrency_limit=concurrency_of(pinned.definition),
    )
    try:
        run = await ctx.store.runs.create(record)
    except DuplicateError:
        # A concurrent request with the same key won the race: answer with its run.
        earlier = await _started_with(ctx, caller, workflow_id, key)
        if earlier is None:
            raise
        return await _replayed(ctx, caller, earlier)
    ctx.wake_workers()
    return StartedRun(run)


async def submit_run(
    ctx: ServiceContext,
    caller: Caller,
    definition: dict[str, Any],
    inputs: dict[str, Any],
    *,
    trigger: str = "api",
) -> Submission:
    """Save the definition (a new version if it changed) and queue a run pinned to that
    version (`stepline run`: a workflow file, run here and now)."""
    saved = await save_workflow(ctx, caller, definition, field="workflow")
    started = await start_run(
        ctx,
        caller,
        saved.workflow.id,
        inputs,
        version=saved.version.version,
        trigger=trigger,
        inputs_field="inputs",
    )
    return Submission(saved, started.run)


async def _replayed(ctx: ServiceContext, caller: Caller, earlier: RunRecord) -> StartedRun:
    return StartedRun(await run_of(ctx, caller, earlier.id, earlier.workflow_id), replayed=True)


async def _started_with(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, key: str | None
) -> RunRecord | None:
    """The run an earlier request with this Idempotency-Key started, if any."""
    if key is None:
        return None
    run = await ctx.store.runs.find_by_idempotency_key(caller.organization_id, key)
    if run is None:
        return None
    if run.workflow_id != workflow_id or not caller.sees(run.workspace_id):
        message = f"Idempotency-Key {key!r} was already used to start a run of another workflow"
        raise Conflict(message, details=[Detail(IDEMPOTENCY_FIELD, message)])
    return run


async def cancel_run(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID
) -> RunRecord:
    """Ask the run to stop (idempotent: a finished run is returned unchanged).

    The worker of this process stops it now if it holds it; any other notices the request
    at its next poll (within half a second).
    """
    await run_of(ctx, caller, run_id, workflow_id)
    run = await ctx.store.runs.request_cancel(caller.organization_id, run_id)
    if run.status not in FINISHED_RUN_STATUSES:
        ctx.cancel_local(run_id)
    return run


@dataclass(frozen=True, slots=True)
class RunWindow:
    """Runs of a workflow from an offset, and how many match in all."""

    runs: list[RunRecord]
    total: int


async def window_runs(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    *,
    offset: int = 0,
    limit: int = 100,
    statuses: Sequence[RunStatus] = (),
) -> RunWindow:
    """The caller's workflow's runs, newest first, `limit` from `offset` (offset paging,
    as Arcee, Onepin and Trigify page), with the total that match."""
    await live_workflow(ctx, caller, workflow_id)
    items, total = await ctx.store.runs.window(
        caller.organization_id,
        workflow_id=workflow_id,
        workspace_id=caller.workspace_id,
        statuses=statuses,
        offset=offset,
        limit=limit,
    )
    return RunWindow(items, total)


async def page_runs(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    *,
    status: RunStatus | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Page[RunRecord]:
    """The caller's workflow's runs, newest first, with step counts (keyset paging;
    `created_to` is exclusive)."""
    await live_workflow(ctx, caller, workflow_id)
    return await ctx.store.runs.page(
        caller.organization_id,
        workflow_id=workflow_id,
        workspace_id=caller.workspace_id,
        status=status,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
        after=after,
        before=before,
    )


async def summarize_runs(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, *, since: datetime, until: datetime
) -> RunSummary:
    """Counts, success rate, duration percentiles and usage of the caller's workflow's runs
    created in [since, until)."""
    await live_workflow(ctx, caller, workflow_id)
    return await ctx.store.runs.summary(
        caller.organization_id,
        workflow_id,
        since=since,
        until=until,
        workspace_id=caller.workspace_id,
    )
