"""Running a workflow end to end in-process against a real store, for engine tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, StepRecord, StepStatus
from stepline.settings import Settings
from stepline.store import Store
from stepline.submit import submit_run
from stepline.worker import Worker


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
    org = await store.ensure_organization()
    submission = await submit_run(store, org, definition, inputs, default_registry())
    return submission.run


async def execute(store: Store, run: RunRecord, *, lease_s: float = 30.0) -> Outcome:
    transitions = Transitions()
    async with open_node_services(Settings()) as services:
        engine = Engine(store, default_registry(), services=services, observer=transitions)
        finished = await Worker(engine, lease_s=lease_s).claim_and_execute(run.id)
    assert finished is not None
    stored = await store.get_run(finished.id)
    assert stored is not None
    steps = {s.step_id: s for s in await store.list_steps(finished.id)}
    return Outcome(stored, steps, transitions)


async def run_workflow(
    store: Store, definition: dict[str, Any], inputs: dict[str, Any] | None = None
) -> Outcome:
    return await execute(store, await queue_run(store, definition, inputs or {}))
