"""Reads the Retab dialect needs beyond the shared verbs: a step by its record's id alone
(today's `GET /v1/workflows/steps/{id}`), what a run's view names (its workflow's name
and version record), and the files a run was given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stepline.errors import Detail, InvalidRequest, NotFound
from stepline.records import RunRecord, StepRecord
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import run_of
from stepline.store.types import MAX_INT


async def step_by_record_id(ctx: ServiceContext, caller: Caller, step_uuid: UUID) -> StepRecord:
    """The step whose record has this id, if its run is the caller's (else NotFound)."""
    step = await ctx.store.steps.get(step_uuid)
    if step is None or step.organization_id != caller.organization_id:
        raise NotFound(f"step {step_uuid} not found")
    try:
        await run_of(ctx, caller, step.run_id)
    except NotFound:
        raise NotFound(f"step {step_uuid} not found") from None
    return step


@dataclass(frozen=True, slots=True)
class RunNames:
    workflow_name: str
    """'' when the workflow was deleted since."""
    workflow_version_id: str


async def run_names(ctx: ServiceContext, caller: Caller, run: RunRecord) -> RunNames:
    """The name of the run's workflow and the id of the version it is pinned to."""
    workflow = await ctx.store.workflows.get(caller.organization_id, run.workflow_id)
    version = await ctx.store.workflows.version(run.workflow_id, run.workflow_version)
    return RunNames(
        workflow_name=workflow.name if workflow is not None else "",
        workflow_version_id=str(version.id) if version is not None else "",
    )


async def input_files(
    ctx: ServiceContext, caller: Caller, inputs: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each top-level input that is a file reference (`{"file_id": ...}`), as
    `{file_id, filename, mime_type}` (name and type null once the file is deleted)."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in inputs.items():
        if not (isinstance(value, dict) and set(value) == {"file_id"}):
            continue
        raw = value["file_id"]
        try:
            file_id = UUID(str(raw))
        except ValueError:
            continue
        record = await ctx.store.files.get(caller.organization_id, file_id)
        found[name] = {
            "file_id": str(file_id),
            "filename": record.filename if record else None,
            "mime_type": record.mime_type if record else None,
        }
    return found


LATEST_VERSION_NAMES = frozenset({"production", "draft", "latest"})


async def version_number(
    ctx: ServiceContext, workflow_id: UUID, version: int | str | None, field: str
) -> int | None:
    """The number of the workflow version `version` names (None: the latest): a number, a
    version record's id (a run's `workflow_version_id`), or one of LATEST_VERSION_NAMES.
    The workflow must be the caller's (checked before)."""
    if version is None or version in LATEST_VERSION_NAMES:
        return None
    if isinstance(version, int) or (version.isascii() and version.isdigit()):
        number = int(version)
        if 1 <= number <= MAX_INT:
            return number
    else:
        for known in await ctx.store.workflows.versions(workflow_id):
            if str(known.id) == version:
                return known.version
    message = (
        f"no version {version!r} of this workflow: give its number, a workflow_version_id, "
        f"or one of {', '.join(sorted(LATEST_VERSION_NAMES))}"
    )
    raise InvalidRequest(f"{field}: {message}", details=[Detail(field, message)])
