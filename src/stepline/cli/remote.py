"""The remote commands' side of a server: a client, and finding things by id or name.

Everything goes through `stepline.sdk` (never raw HTTP); its errors propagate to
`failures.explain`. The server is `--server`, else STEPLINE_SERVER, else the one
`stepline serve` saved; the key STEPLINE_API_KEY, else the saved one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from uuid import UUID

from stepline.cli import ids
from stepline.cli.failures import fail

if TYPE_CHECKING:
    from stepline.sdk import Client, Run, Step, Workflow


@contextmanager
def connect(server: str | None, *, workspace_id: UUID | None = None) -> Iterator[Client]:
    """A client of `server` (or the configured one), which has a key to send."""
    from stepline.sdk import Client

    with Client(base_url=server, workspace_id=workspace_id) as client:
        if client.api_key is None:
            fail(
                f"no API key for {client.base_url}: set STEPLINE_API_KEY "
                "(`stepline keys create` makes one)"
            )
        yield client


def find_workflow_by_name(client: Client, name: str) -> Workflow | None:
    matches = [w for w in client.workflows.list(name=name) if w.name == name]
    if len(matches) > 1:
        listed = ", ".join(str(w.id) for w in matches)
        fail(f"{len(matches)} workflows are named {name!r} ({listed}): name one by its id")
    return matches[0] if matches else None


def resolve_workflow(client: Client, ref: str) -> Workflow:
    """A workflow named by its id or its name."""
    workflow_id = ids.as_uuid(ref)
    if workflow_id is not None:
        return client.workflows.get(workflow_id)
    found = find_workflow_by_name(client, ref)
    if found is None:
        fail(f"no workflow named {ref!r} on {client.base_url}")
    return found


def find_run(client: Client, value: str, workflow_ref: str | None) -> Run:
    """The run a whole id or a unique id prefix names. The API nests runs under workflows,
    so without --workflow each workflow is asked in turn."""
    from stepline.sdk import NotFoundError

    workflows = (
        [resolve_workflow(client, workflow_ref)]
        if workflow_ref is not None
        else list(client.workflows.list())
    )
    where = f" on {client.base_url}"
    whole = ids.as_uuid(value)
    if whole is not None:
        for workflow in workflows:
            try:
                return client.runs.get(workflow.id, whole)
            except NotFoundError:
                continue
        fail(f"no run with id {value}{where}")
    prefix = ids.id_prefix(value, "run id")
    owners: dict[UUID, UUID] = {}
    for workflow in workflows:
        for run in client.runs.list(workflow.id, page_size=1000):
            if ids.starts_with(run.id, prefix):
                owners[run.id] = run.workflow_id
    chosen = ids.choose(value, list(owners), "run", where)
    return client.runs.get(owners[chosen], chosen)


def all_steps(client: Client, run: Run) -> list[Step]:
    return list(client.runs.steps.list(run.workflow_id, run.id, page_size=1000))


def newest_runs(
    client: Client, workflow_ref: str | None, limit: int
) -> tuple[list[Run], dict[UUID, str]]:
    """The newest runs of one workflow, or of all, and the names of their workflows."""
    if workflow_ref is not None:
        workflows = [resolve_workflow(client, workflow_ref)]
    else:
        workflows = list(client.workflows.list())
    runs: list[Run] = []
    for workflow in workflows:
        runs += client.runs.list(workflow.id, page_size=limit).first_page().items
    runs.sort(key=lambda r: r.created_at, reverse=True)
    return runs[:limit], {w.id: w.name for w in workflows}
