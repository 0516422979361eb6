"""Saving and validating workflow definitions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stepline.documents import DocumentError, check_definition
from stepline.errors import Detail, InvalidRequest, NotFound
from stepline.records import RunRecord, WorkflowRecord, WorkflowVersion
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import live_workflow
from stepline.spec.validate import ValidationIssue, WorkflowInvalid
from stepline.store import SavedWorkflow
from stepline.store.errors import WorkflowNotFoundError
from stepline.store.paging import MAX_PAGE_SIZE, Page


class DefinitionInvalid(WorkflowInvalid):
    """A definition to save has problems: each in `details`, at its field (`body.nodes[2]...`)."""

    def __init__(self, issues: list[ValidationIssue], *, field: str) -> None:
        details = [Detail(field + i.path.removeprefix("$"), issue_text(i)) for i in issues]
        count = len(issues)
        first = f"{details[0].field}: {details[0].message}" if details else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        InvalidRequest.__init__(
            self,
            f"the workflow is invalid ({count} problem{'s' * (count != 1)}): {first}{more}",
            details=details,
        )
        self.issues = issues


def issue_text(issue: ValidationIssue) -> str:
    return f"node {issue.node_id!r}: {issue.message}" if issue.node_id else issue.message


async def validate_definition(ctx: ServiceContext, definition: Any) -> list[ValidationIssue]:
    """Every problem of the definition (none: it is valid); validated off the event loop."""
    return await ctx.definition_issues(definition)


async def check_definition_valid(ctx: ServiceContext, definition: Any, *, field: str) -> None:
    """TooLarge or InvalidRequest unless the definition is a document within the limits;
    DefinitionInvalid unless it is a valid workflow."""
    try:
        check_definition(definition, ctx.limits)
    except DocumentError as exc:
        raise exc.at(field) from None
    issues = await validate_definition(ctx, definition)
    if issues:
        raise DefinitionInvalid(issues, field=field)


async def create_workflow(
    ctx: ServiceContext, caller: Caller, definition: dict[str, Any], *, field: str = "body"
) -> SavedWorkflow:
    """A new workflow (in the caller's workspace) with the definition as version 1.

    WorkflowNameTakenError (a Conflict) if a live workflow of the scope has its name.
    """
    await check_definition_valid(ctx, definition, field=field)
    return await ctx.store.workflows.create(
        caller.organization_id, definition, workspace_id=caller.workspace_id
    )


async def save_workflow(
    ctx: ServiceContext,
    caller: Caller,
    definition: dict[str, Any],
    *,
    workflow_id: UUID | None = None,
    field: str = "body",
) -> SavedWorkflow:
    """Save the definition as the workflow `workflow_id` (one of the caller's), or as the
    organization's workflow of its name (created if none): a changed definition becomes a
    new version, an unchanged one keeps its version."""
    if workflow_id is not None:
        await live_workflow(ctx, caller, workflow_id)
    await check_definition_valid(ctx, definition, field=field)
    return await ctx.store.workflows.save(
        caller.organization_id, definition, workflow_id=workflow_id
    )


async def patch_workflow(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    *,
    name: str | None = None,
    description: str | None = None,
) -> WorkflowRecord:
    """Rename the caller's workflow or change its description (its versions stay);
    WorkflowNameTakenError (a Conflict) if another live workflow has the name."""
    await live_workflow(ctx, caller, workflow_id)
    if name is not None and not name.strip():
        raise InvalidRequest(
            "body.name: a workflow name must not be blank",
            details=[Detail("body.name", "a workflow name must not be blank")],
        )
    return await ctx.store.workflows.patch(
        caller.organization_id, workflow_id, name=name, description=description
    )


async def delete_workflow(ctx: ServiceContext, caller: Caller, workflow_id: UUID) -> None:
    """Soft-delete the caller's workflow (its runs are kept)."""
    await live_workflow(ctx, caller, workflow_id)
    if not await ctx.store.workflows.delete(caller.organization_id, workflow_id):
        raise NotFound(f"workflow {workflow_id} not found")


async def duplicate_workflow(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, *, name: str | None = None
) -> SavedWorkflow:
    """A new workflow holding a copy of the latest definition, named `name` (default:
    '<name> (copy)'); WorkflowNameTakenError (a Conflict) if `name` is taken."""
    await live_workflow(ctx, caller, workflow_id)
    if name is not None and not name.strip():
        raise InvalidRequest(
            "body.name: a workflow name must not be blank",
            details=[Detail("body.name", "a workflow name must not be blank")],
        )
    try:
        return await ctx.store.workflows.duplicate(caller.organization_id, workflow_id, name=name)
    except WorkflowNotFoundError:
        raise NotFound(f"workflow {workflow_id} not found") from None


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    """A page of workflows and each one's latest definition (by workflow id)."""

    page: Page[WorkflowRecord]
    definitions: dict[UUID, dict[str, Any]]


async def page_workflows(
    ctx: ServiceContext,
    caller: Caller,
    *,
    name: str | None = None,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> WorkflowPage:
    """The caller's live workflows, newest first (of one name if given), with their latest
    definitions."""
    page = await ctx.store.workflows.page(
        caller.organization_id,
        workspace_id=caller.workspace_id,
        name=name,
        limit=limit,
        after=after,
        before=before,
    )
    definitions = await ctx.store.workflows.latest_definitions(caller.organization_id, page.items)
    return WorkflowPage(page, definitions)


async def page_versions(
    ctx: ServiceContext,
    caller: Caller,
    workflow_id: UUID,
    *,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Page[WorkflowVersion]:
    """The versions of the caller's workflow, newest first."""
    await live_workflow(ctx, caller, workflow_id)
    return await ctx.store.workflows.page_versions(
        caller.organization_id, workflow_id, limit=limit, after=after, before=before
    )


async def version_of(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, version: int
) -> WorkflowVersion:
    """One version of the caller's workflow (NotFound if it has no such version)."""
    await live_workflow(ctx, caller, workflow_id)
    found = await ctx.store.workflows.version(workflow_id, version)
    if found is None:
        raise NotFound(f"version {version} of workflow {workflow_id} not found")
    return found


async def pinned_version(ctx: ServiceContext, run: RunRecord) -> WorkflowVersion | None:
    """The version a run is pinned to (None if it is gone)."""
    return await ctx.store.workflows.version(run.workflow_id, run.workflow_version)


@dataclass(frozen=True, slots=True)
class LatestRunStatuses:
    run_id: UUID | None
    """The workflow's latest run (None: it has none)."""
    statuses: dict[str, str]
    """Each node's status in that run (`store.steps.node_statuses`)."""


async def latest_run_statuses(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID
) -> LatestRunStatuses:
    """The caller's workflow's latest run and each of its nodes' status in it."""
    runs = await ctx.store.runs.list(caller.organization_id, workflow_id=workflow_id, limit=1)
    if not runs:
        return LatestRunStatuses(None, {})
    run_id = runs[0].id
    return LatestRunStatuses(
        run_id, await ctx.store.steps.node_statuses(caller.organization_id, run_id)
    )


async def definition_of(ctx: ServiceContext, workflow_id: UUID, version: int) -> dict[str, Any]:
    """The definition of one version of a workflow ({} if the version is gone)."""
    found = await ctx.store.workflows.version(workflow_id, version)
    return found.definition if found is not None else {}


async def pinned_definition(ctx: ServiceContext, run: RunRecord) -> dict[str, Any]:
    """The definition of the version a run is pinned to."""
    return await definition_of(ctx, run.workflow_id, run.workflow_version)


async def latest_definition(ctx: ServiceContext, workflow: WorkflowRecord) -> dict[str, Any]:
    """The definition of a workflow's latest version."""
    return await definition_of(ctx, workflow.id, workflow.latest_version)


async def all_workflows(ctx: ServiceContext, caller: Caller) -> AsyncIterator[WorkflowRecord]:
    """The caller's live workflows (of its workspace, when it has one), newest first,
    read a page at a time."""
    after: str | None = None
    while True:
        page = await ctx.store.workflows.page(
            caller.organization_id,
            workspace_id=caller.workspace_id,
            limit=MAX_PAGE_SIZE,
            after=after,
        )
        for workflow in page.items:
            yield workflow
        if page.next_cursor is None:
            return
        after = page.next_cursor
