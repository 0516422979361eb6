"""A run that cannot be executed fails alone, in one claim; the worker goes on with the others.

Before, a run whose inputs nested 240 levels (stored before documents were bounded) made
every claim fail: the worker loop retried it forever, every organization's runs stayed
queued, and a restart did not help. A code step returning a 240-level list did the same
to its own run, claimed and failed again at every lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pydantic
import pytest

from stepline.documents import DocumentLimits
from stepline.engine import Engine, NullObserver
from stepline.engine.services import open_node_services
from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.registry import NodeRegistry, default_registry
from stepline.records import (
    ErrorStage,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    TokenUsage,
)
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker, WorkerPool

ECHO = {
    "name": "echo",
    "nodes": [{"id": "echo", "type": "reshape", "config": {"output": "{{ inputs.x }}"}}],
}


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


NESTS_240 = """
def main(inputs):
    value = []
    for _ in range(239):
        value = [value]
    return value
"""


def code(body: str, name: str = "code") -> dict[str, Any]:
    return {
        "name": name,
        "nodes": [{"id": "make", "type": "code", "config": {"inputs": {}, "code": body}}],
    }


async def queue(
    store: Store, organization: str, definition: dict[str, Any], inputs: dict[str, Any]
) -> RunRecord:
    """A queued run, straight in the store: as any run was stored before the API's limits."""
    org = await store.organizations.ensure(organization)
    saved = await store.workflows.save(org, definition)
    return await store.runs.create(
        RunRecord(
            workflow_id=saved.workflow.id,
            workflow_version=saved.version.version,
            organization_id=org,
            inputs=inputs,
        )
    )


@asynccontextmanager
async def engine(
    store: Store,
    *,
    registry: NodeRegistry | None = None,
    observer: Any = None,
    limits: DocumentLimits | None = None,
) -> AsyncIterator[Engine]:
    async with open_node_services(Settings()) as services:
        yield Engine(
            store,
            registry or default_registry(),
            services=services,
            observer=observer or NullObserver(),
            limits=limits or DocumentLimits(),
        )


async def finished(store: Store, run: RunRecord) -> RunRecord:
    found = await store.runs.get(run.id)
    assert found is not None
    return found


async def only_step(store: Store, run: RunRecord) -> StepRecord:
    (step,) = await store.steps.list(run.id)
    return step


async def test_a_poisoned_run_fails_alone_and_the_next_organizations_run_completes(
    store: Store,
) -> None:
    poisoned = await queue(store, "org-a", ECHO, {"x": nested(240)})
    other = await queue(store, "org-b", ECHO, {"x": "fine"})
    stop = asyncio.Event()
    async with engine(store) as e:
        pool = WorkerPool(Worker(e, lease_s=30), concurrency=1, poll_s=0.05)
        serving = asyncio.create_task(pool.serve(stop))
        try:
            async with asyncio.timeout(30):
                while (await finished(store, other)).status is not RunStatus.completed:
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await serving

    failed = await finished(store, poisoned)
    assert failed.status is RunStatus.failed
    assert failed.attempt == 1  # one claim, never again
    assert failed.error is not None and "nested deeper than 64 levels" in failed.error
    assert failed.error_details is not None and failed.error_details.context is not None
    assert failed.error_details.context["error_stage"] == ErrorStage.input_collection
    assert (await finished(store, other)).output == "fine"
    # Its record reads, lists and cancels like any other (a 500 before).
    assert failed.inputs == {"x": nested(240)}
    assert poisoned.id in {r.id for r in await store.runs.list(poisoned.organization_id)}
    cancelled = await store.runs.request_cancel(poisoned.organization_id, poisoned.id)
    assert cancelled.status is RunStatus.failed


async def test_a_run_whose_record_cannot_be_loaded_is_failed_by_the_claim(store: Store) -> None:
    broken = await queue(store, "org-a", ECHO, {"x": 1})
    other = await queue(store, "org-b", ECHO, {"x": 2})

    def break_inputs(conn: Any) -> None:
        from stepline.store.tables import runs

        # Inputs must be an object: an array cannot become a RunRecord.
        conn.execute(runs.update().where(runs.c.id == broken.id).values(inputs=[1, 2]))

    await store.writer.submit(break_inputs)
    claimed = await store.runs.claim("worker", 30)
    assert claimed is not None and claimed.id == other.id
    row = await store.database.read(
        lambda conn: conn.exec_driver_sql(
            "SELECT status, error, attempt FROM runs WHERE run_number = 1 AND status = 'failed'"
        ).all()
    )
    ((status, error, attempt),) = row
    assert status == "failed" and attempt == 1
    assert error.startswith("the run's record could not be loaded: ValidationError")


async def test_a_step_returning_240_levels_fails_at_output_storage_in_one_claim(
    store: Store,
) -> None:
    run = await queue(
        store,
        "org-a",
        code(NESTS_240),
        {},
    )
    async with engine(store) as e:
        done = await Worker(e, lease_s=30).claim_and_execute(run.id)
    assert done is not None and done.status is RunStatus.failed
    assert done.attempt == 1
    step = await only_step(store, run)
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.output_storage
    assert step.outputs is None
    assert step.error is not None and "nested deeper than 64 levels" in step.error
    assert step.error_details is not None and step.error_details.context is not None
    assert step.error_details.context["path"] == "output" + "[0]" * 64
    assert done.error_details is not None and done.error_details.context is not None
    assert done.error_details.context["error_stage"] == ErrorStage.output_storage


async def test_an_output_over_the_size_limit_fails_its_step_instead_of_being_stored(
    store: Store,
) -> None:
    run = await queue(store, "org-a", code("def main(inputs):\n    return 'x' * 2000\n"), {})
    async with engine(store, limits=DocumentLimits(max_output_bytes=1000)) as e:
        done = await Worker(e, lease_s=30).claim_and_execute(run.id)
    assert done is not None and done.status is RunStatus.failed
    step = await only_step(store, run)
    assert step.error_stage is ErrorStage.output_storage
    assert step.outputs is None
    assert step.error is not None
    assert "over the limit of 1,000 (STEPLINE_MAX_OUTPUT_BYTES)" in step.error


async def test_resolved_inputs_over_the_limits_fail_at_input_collection(store: Store) -> None:
    definition = {
        "name": "wrap",
        "nodes": [{"id": "wrap", "type": "reshape", "config": {"output": {"a": "{{ inputs.x }}"}}}],
    }
    run = await queue(store, "org-a", definition, {"x": nested(8)})
    async with engine(store, limits=DocumentLimits(max_depth=9)) as e:
        done = await Worker(e, lease_s=30).claim_and_execute(run.id)
    assert done is not None and done.status is RunStatus.failed
    step = await only_step(store, run)
    assert step.error_stage is ErrorStage.input_collection
    assert step.inputs is None
    assert step.error is not None and "cannot be recorded" in step.error


class _Raising:
    """An observer with a bug that shows on one organization's steps only."""

    def __init__(self, organization_id: Any) -> None:
        self.organization_id = organization_id

    def step_changed(self, step: StepRecord) -> None:
        if step.organization_id == self.organization_id and step.status is StepStatus.running:
            raise RuntimeError("a bug in the engine")

    def run_changed(self, run: RunRecord) -> None:
        pass


async def test_any_error_in_one_run_fails_that_run_and_the_worker_goes_on(store: Store) -> None:
    buggy = await queue(store, "org-a", ECHO, {"x": 1})
    other = await queue(store, "org-b", ECHO, {"x": 2})
    async with engine(store, observer=_Raising(buggy.organization_id)) as e:
        done = await Worker(e, lease_s=30).drain()
    assert [r.status for r in done] == [RunStatus.failed, RunStatus.completed]
    failed = await finished(store, buggy)
    assert failed.attempt == 1
    assert failed.error is not None
    assert "RuntimeError: a bug in the engine" in failed.error
    assert failed.error_details is not None and failed.error_details.traceback
    assert (await finished(store, other)).output == 2


class _Huge(NodeKind):
    """A plugin kind reporting more tokens than the database's BIGINT holds."""

    type = "huge_usage"
    config_model = pydantic.create_model("HugeConfig")

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output="ok", tokens=TokenUsage(total=2**70))


@pytest.mark.parametrize("kinds", [[_Huge]], ids=["huge-usage"])
async def test_a_run_the_store_cannot_finish_fails_without_its_totals(
    store: Store, kinds: list[type[NodeKind]]
) -> None:
    registry = NodeRegistry([*default_registry().values(), *(k() for k in kinds)])
    definition = {"name": "usage", "nodes": [{"id": "use", "type": "huge_usage"}]}
    run = await queue(store, "org-a", definition, {})
    other = await queue(store, "org-b", ECHO, {"x": 3})
    async with engine(store, registry=registry) as e:
        done = await Worker(e, lease_s=30).drain()
    assert [r.status for r in done] == [RunStatus.failed, RunStatus.completed]
    assert (await finished(store, other)).output == 3
    failed = await finished(store, run)
    assert failed.attempt == 1
    assert failed.error is not None and failed.error.startswith("the run could not be executed")


NUL_CODE = """
def main(inputs):
    print("printed \\x00 nul")
    if inputs["raise"]:
        raise ValueError("raised \\x00 nul")
    return "returned \\x00 nul"
"""


@pytest.mark.parametrize("raises", [True, False], ids=["raised", "returned"])
async def test_nul_from_a_code_step_is_escaped_in_its_record_or_refused_as_output(
    store: Store, raises: bool
) -> None:
    definition = {
        "name": "nul",
        "nodes": [
            {
                "id": "make",
                "type": "code",
                "config": {"inputs": {"raise": raises}, "code": NUL_CODE},
            }
        ],
    }
    run = await queue(store, "org-a", definition, {})
    async with engine(store) as e:
        done = await Worker(e, lease_s=30).claim_and_execute(run.id)
    assert done is not None and done.status is RunStatus.failed and done.attempt == 1
    step = await only_step(store, run)
    assert step.status is StepStatus.error
    assert step.error is not None
    if raises:
        assert step.error_stage is ErrorStage.execution
        assert step.error == "ValueError: raised \\u0000 nul"
        assert step.step_metadata is not None
        assert step.step_metadata["stdout"] == "printed \\u0000 nul\n"
    else:
        assert step.error_stage is ErrorStage.output_storage
        assert "output: a string holding NUL" in step.error
