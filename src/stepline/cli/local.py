"""The local commands' runtime: the configured database, an engine on it, and what the
commands read from it.

Every heavy import (SQLAlchemy, the engine) happens inside these functions, so that
importing a command module stays cheap. Errors propagate to `failures.explain`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from stepline.cli import ids
from stepline.cli.failures import fail

if TYPE_CHECKING:
    from stepline.engine import RunObserver
    from stepline.records import RunRecord, StepRecord
    from stepline.runtime import Runtime
    from stepline.service import Submission
    from stepline.settings import Settings
    from stepline.store import Store

T = TypeVar("T")


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's body on an event loop."""
    import asyncio

    return asyncio.run(main())


@asynccontextmanager
async def open_local(
    *,
    worker: bool = False,
    observer: RunObserver | None = None,
    environment_secrets: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    worker_name: str | None = None,
    warm_sandbox: bool = True,
) -> AsyncIterator[Runtime]:
    """The configured runtime (`stepline.runtime.open_runtime`): the database, migrated,
    its secrets vault, the service verbs' context, and with `worker` an engine and worker."""
    from stepline.runtime import open_runtime
    from stepline.settings import get_settings

    async with open_runtime(
        settings or get_settings(),
        worker=worker,
        observer=observer,
        environment_secrets=environment_secrets,
        worker_name=worker_name,
        warm_sandbox=warm_sandbox,
    ) as runtime:
        yield runtime


@asynccontextmanager
async def open_store() -> AsyncIterator[Store]:
    """The configured database, migrated to the current schema."""
    async with open_local() as runtime:
        yield runtime.store


def check_providers() -> None:
    """Refuse to start on a configuration file whose providers are wrong (rather than
    failing each model step later with the same message)."""
    from stepline.providers.config import configured_providers

    configured_providers()


# -- running a workflow file ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    run: RunRecord
    steps: list[StepRecord]


async def run_here(
    definition: dict[str, Any],
    inputs: dict[str, Any],
    observer: RunObserver,
    on_start: Callable[[Submission], None],
    *,
    uploads: Mapping[str, Path] | None = None,
) -> Finished:
    """Save the definition, queue a run of it and execute it in this process; each of
    `uploads` is stored first and given as its input `{"file_id": ...}`."""
    from stepline.cli.stored_files import upload_local
    from stepline.service import Caller, submit_run

    # Here, and only here (no server), secrets may come from this environment too.
    # A workflow without code steps spares the sandbox's start (it would compete with
    # the first steps for the CPU); a child workflow's code step still starts it.
    async with open_local(
        worker=True,
        observer=observer,
        environment_secrets=os.environ,
        warm_sandbox=has_code_nodes(definition),
    ) as rt:
        org = await rt.store.organizations.ensure()
        caller = Caller(org, actor="cli")
        inputs = dict(inputs)
        for name, path in (uploads or {}).items():
            inputs[name] = {"file_id": (await upload_local(rt, caller, path))["id"]}
        submission = await submit_run(rt.service, caller, definition, inputs, trigger="cli")
        on_start(submission)
        # A live view (LiveProgress) shows while the run executes.
        shown = observer if isinstance(observer, AbstractContextManager) else nullcontext()
        with shown:
            finished = await rt.worker.claim_and_execute(submission.run.id)
        assert finished is not None, "a run this process just queued could not be claimed"
        full = await rt.store.runs.get(finished.id) or finished
        return Finished(full, await rt.store.steps.list(finished.id))


def has_code_nodes(definition: Any) -> bool:
    """Whether a node of kind `code` is anywhere in the definition (loop bodies too)."""
    if isinstance(definition, dict):
        if definition.get("type") == "code":
            return True
        return any(has_code_nodes(value) for value in definition.values())
    if isinstance(definition, list):
        return any(has_code_nodes(item) for item in definition)
    return False


# -- reading runs back ---------------------------------------------------------------------


async def resolve_run(store: Store, value: str) -> UUID:
    """The run a whole id or a unique id prefix names (else exit 2, listing candidates)."""
    whole = ids.as_uuid(value)
    if whole is not None:
        if await store.runs.get(whole) is None:
            fail(f"no run with id {value}")
        return whole
    prefix = ids.id_prefix(value, "run id")
    low, high = ids.uuid_bounds(prefix)
    found = await store.runs.ids_between(low, high, limit=ids.SHOWN_CANDIDATES + 1)
    return ids.choose(value, found, "run")


async def run_with_steps(value: str) -> Finished:
    """The run `value` names, with its steps."""
    async with open_store() as store:
        run_id = await resolve_run(store, value)
        found = await store.runs.get(run_id)
        if found is None:
            fail(f"no run with id {value}")
        return Finished(found, await store.steps.list(run_id))


async def newest_runs(limit: int) -> tuple[list[RunRecord], dict[UUID, str]]:
    """The newest runs, and the names of their workflows."""
    async with open_store() as store:
        runs = await store.runs.list(limit=limit)
        names: dict[UUID, str] = {}
        for run in runs:
            if run.workflow_id not in names:
                workflow = await store.workflows.get(run.organization_id, run.workflow_id)
                if workflow is not None:
                    names[run.workflow_id] = workflow.name
        return runs, names


async def organization_id(store: Store, name: str, *, create: bool = False) -> UUID:
    """The organization called `name`; one that does not exist is exit 2, unless `create`."""
    found = await store.organizations.find(name)
    if found is not None:
        return found.id
    if create:
        return await store.organizations.ensure(name)
    fail(
        f"no organization named {name!r}: check the name, or add --create-org "
        "(to `keys create` or `secrets set`) to create it"
    )
