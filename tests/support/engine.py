"""Running a workflow end to end in-process against a real store, for engine tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stepline import service
from stepline.documents import DocumentLimits
from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.base import NodeKind
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, StepRecord, StepStatus
from stepline.secrets.source import SecretSource
from stepline.service import Caller, ServiceContext, Submission
from stepline.settings import Settings
from stepline.store import SavedWorkflow, Store
from stepline.worker import Worker


def service_on(
    store: Store, kinds: Mapping[str, NodeKind] | None = None, secrets: SecretSource | None = None
) -> ServiceContext:
    """The service verbs' context on `store`, as `open_runtime` makes it (default limits)."""
    return ServiceContext(
        store=store, kinds=kinds or default_registry(), limits=DocumentLimits(), secrets=secrets
    )


async def submit_run(
    store: Store,
    organization_id: Any,
    definition: dict[str, Any],
    inputs: dict[str, Any],
    kinds: Mapping[str, NodeKind],
    *,
    trigger: str = "api",
    secrets: SecretSource | None = None,
) -> Submission:
    """Save the definition and queue a run of it, as `stepline run` does."""
    ctx = service_on(store, kinds, secrets)
    return await service.submit_run(
        ctx, Caller(organization_id), definition, inputs, trigger=trigger
    )


async def save_definition(
    store: Store, organization_id: Any, definition: dict[str, Any], kinds: Mapping[str, NodeKind]
) -> SavedWorkflow:
    """Validate the definition and save it (a new version if it changed)."""
    return await service.save_workflow(
        service_on(store, kinds), Caller(organization_id), definition
    )


@dataclass
class Transitions:
    """A RunObserver that remembers every status each step went through, in order."""

    statuses: dict[str, list[StepStatus]] = field(default_factory=dict)
    snapshots: list[StepRecord] = field(default_factory=list)
    run_statuses: list[str] = field(default_factory=list)

    def step_changed(self, step: StepRecord) -> None:
        seen = self.statuses.setdefault(step.step_id, [])
        if not seen or seen[-1] is not step.status:
            seen.append(step.status)
        self.snapshots.append(step.model_copy(deep=True))

    def run_changed(self, run: RunRecord) -> None:
        self.run_statuses.append(str(run.status))


@dataclass
class Outcome:
    run: RunRecord
    steps: dict[str, StepRecord]
    transitions: Transitions


async def queue_run(store: Store, definition: dict[str, Any], inputs: dict[str, Any]) -> RunRecord:
    org = await store.organizations.ensure()
    submission = await submit_run(store, org, definition, inputs, default_registry())
    return submission.run


async def execute(store: Store, run: RunRecord, *, lease_s: float = 30.0) -> Outcome:
    transitions = Transitions()
    async with open_node_services(Settings()) as services:
        engine = Engine(store, default_registry(), services=services, observer=transitions)
        finished = await Worker(engine, lease_s=lease_s).claim_and_execute(run.id)
    assert finished is not None
    stored = await store.runs.get(finished.id)
    assert stored is not None
    steps = {s.step_id: s for s in await store.steps.list(finished.id)}
    return Outcome(stored, steps, transitions)


async def run_workflow(
    store: Store, definition: dict[str, Any], inputs: dict[str, Any] | None = None
) -> Outcome:
    return await execute(store, await queue_run(store, definition, inputs or {}))


def metadata(step: StepRecord) -> dict[str, Any]:
    """The step's metadata without `worker` (every executed step records the worker that
    ran it, a name that differs on each run), which must be there."""
    found = dict(step.step_metadata or {})
    worker = found.pop("worker", None)
    assert isinstance(worker, str) and worker, f"step {step.step_id} records no worker"
    return found
