"""Drives one claimed run to its end: plans ready nodes, runs them concurrently, routes results.

Resuming is the same code path as starting: the steps already on record are loaded first,
a step that completed is never executed again (its output is the checkpoint), and a step
found `running` was interrupted and runs again with its retry count raised.

A run whose every remaining path waits for a person (a review, or a loop whose body waits
for one) pauses: it ends `waiting_for_human` and releases its lease; the review's decision
queues it again, and the next claim resumes it from its checkpoints.

A run stops early on its timeout (it fails) or when its `cancel` event is set (the worker
sets it when a cancel is requested): the step tasks in flight are cancelled, which kills
their sandbox processes and HTTP calls, and every unfinished step is marked cancelled.

The secrets a workflow names (`{{ secrets.NAME }}`) are read from the engine's
`secrets` source when the run starts, into its template scope only; every step write and
the run's outcome go through the run's `Redactor`, so their values are recorded as `***`
while the steps themselves work with the real ones.

A run that cannot be executed (its version cannot be loaded, its inputs or output are
not documents within the engine's `limits`, a step's record cannot be stored, or any
other error of its own) fails at once, with the reason on the run (`engine.failures`);
only an outage of the store itself propagates, for the lease to expire and another claim
to resume the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from stepline.documents import DocumentError, DocumentLimits, check_inputs, check_output
from stepline.documents.text import describe_error
from stepline.engine.body import LoopBody
from stepline.engine.failures import RunNotExecutable, mark_unstorable, run_failure
from stepline.engine.frame import Frame
from stepline.engine.observer import NullObserver, RunObserver
from stepline.engine.step_runner import StepRunner
from stepline.files import FileAccess
from stepline.files.library import FileLibrary
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import NodeRegistry
from stepline.records import (
    FINISHED_STEP_STATUSES,
    ErrorDetails,
    ErrorStage,
    IterationContext,
    IterationFrame,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    utcnow,
)
from stepline.retrieval.access import KnowledgeAccess
from stepline.retrieval.library import KnowledgeLibrary
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError
from stepline.secrets.redact import NO_REDACTION, Redactor
from stepline.secrets.source import MissingSecrets, SecretSource, resolve_secrets
from stepline.spec.graph import WorkflowGraph
from stepline.spec.models import NodeSpec, WorkflowSpec
from stepline.spec.templates import TemplateError, Templates, get_templates
from stepline.spec.validate import WorkflowInvalid, load_workflow, secret_references
from stepline.step_order import component
from stepline.store import Store
from stepline.store.errors import LeaseLostError, is_outage
from stepline.store.events import step_event_params

RUN_CANCELLED = "run cancelled"
"""The status_reason of the steps a cancel stopped (as `store.runs.request_cancel` writes it)."""
RUN_FAILED = "the run failed before this step finished"
CONTAINER_STOPPED = "its loop stopped before this step finished"
SPEC_CACHE_SIZE = 256
"""Validated workflow versions an engine keeps (a version never changes once stored)."""

_EVERY_STEP_FIELD: set[str] = set(StepRecord.model_fields)
"""Shared by the step records the engine creates as their `model_fields_set`: pydantic adds
each field assigned to that set, which then grows past 18 names to a 2 KB table per step,
a third of a loop step's memory while its run executes (20 MB in a 10,000-step loop).
Every name is in it already, so `add` never changes it: each record reads as having every
field set, which is true of a record the engine fills in (nothing reads it otherwise)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A stored version made ready to run: its validated spec and its graph (shared by
    every run of the version: a graph only caches what it computes)."""

    spec: WorkflowSpec
    graph: WorkflowGraph


@dataclass
class Engine:
    """Executes runs against a store with a registry of node kinds."""

    store: Store
    registry: NodeRegistry
    services: NodeServices = field(default_factory=NodeServices)
    observer: RunObserver = field(default_factory=NullObserver)
    templates: Templates = field(default_factory=get_templates)
    lease_s: float = 30.0
    """The lease of the child runs this engine drives in-process (sub_workflow)."""
    secrets: SecretSource | None = None
    """Where the values of the secrets a run names come from (none: a run naming one fails)."""
    limits: DocumentLimits = field(default_factory=DocumentLimits)
    """How deep and large a run's inputs, a step's inputs and outputs may be."""
    _specs: dict[str, Loaded] = field(default_factory=dict, init=False, repr=False)
    _pinned: dict[tuple[UUID, int], Loaded] = field(default_factory=dict, init=False, repr=False)
    """The spec of each (workflow, version) a run was pinned to: a stored version never
    changes, so a run of a known one reads nothing to start (no definition to parse)."""

    async def execute(
        self,
        run: RunRecord,
        *,
        worker_id: str | None = None,
        cancel: asyncio.Event | None = None,
    ) -> RunRecord:
        """Run (or resume) a run that this worker has claimed, and record how it ended.

        Setting `cancel` stops the run and finishes it `cancelled`; a run whose cancel was
        requested before this claim is cancelled without running anything.
        """
        cancel = cancel or asyncio.Event()
        if run.cancel_requested_at is not None:
            cancel.set()
        pinned = (run.workflow_id, run.workflow_version)
        loaded = self._pinned.get(pinned)
        if loaded is None:
            try:
                version = await self.store.workflows.version(*pinned)
            except Exception as exc:
                if is_outage(exc):
                    raise
                reason = f"the run's workflow version could not be loaded: {describe_error(exc)}"
                return await self._fail(run, worker_id, reason, ErrorStage.document_fetch, exc)
            if version is None:
                return await self._finish(
                    run, worker_id, RunStatus.failed, error="the run's workflow version is missing"
                )
            try:
                loaded = self._load(version.digest, version.definition)
            except WorkflowInvalid as exc:
                return await self._finish(
                    run, worker_id, RunStatus.failed, error=f"the workflow is not valid: {exc}"
                )
            _remember(self._pinned, pinned, loaded)
        spec = loaded.spec
        try:
            check_inputs(run.inputs, self.limits, path="inputs")
        except DocumentError as exc:
            reason = f"the run's inputs cannot be used: {exc}"
            return await self._fail(run, worker_id, reason, ErrorStage.input_collection, exc)
        try:
            secrets = await resolve_secrets(
                self.secrets, secret_references(spec), run.organization_id, run.workspace_id
            )
        except (MissingSecrets, SecretKeyError, SecretDecryptError) as exc:
            reason = f"could not read the run's secrets: {exc}"
            return await self._finish(
                run,
                worker_id,
                RunStatus.failed,
                error=reason,
                error_details=ErrorDetails(type=type(exc).__name__, message=reason),
            )
        self.observer.run_changed(run)
        execution = RunExecution(
            self, run, spec, cancel, worker_id, secrets=secrets, graph=loaded.graph
        )
        try:
            status, output, error, details = await execution.execute()
        except Exception as exc:
            if is_outage(exc) or isinstance(exc, LeaseLostError):
                raise
            return await self._fail_execution(execution, exc)
        if status is RunStatus.waiting_for_human:
            paused = await self.store.runs.pause(run.id, worker_id)
            self.observer.run_changed(paused)
            return paused
        return await self._finish(
            run,
            worker_id,
            status,
            output=output,
            error=error,
            error_details=details,
            steps=execution.steps.values(),
            redactor=execution.redactor,
        )

    def _load(self, digest: str, definition: dict[str, Any]) -> Loaded:
        """The validated spec of a stored version and its graph; made once per digest."""
        loaded = self._specs.get(digest)
        if loaded is None:
            spec = load_workflow(definition, self.registry)
            loaded = Loaded(spec, WorkflowGraph(spec))
            _remember(self._specs, digest, loaded)
        return loaded

    async def _fail(
        self,
        run: RunRecord,
        worker_id: str | None,
        reason: str,
        stage: ErrorStage,
        exc: BaseException | None = None,
    ) -> RunRecord:
        """Fail a run before any of its steps ran (it cannot be executed)."""
        details = run_failure(reason, stage, exc)
        return await self._finish(
            run, worker_id, RunStatus.failed, error=reason, error_details=details
        )

    async def _fail_execution(self, execution: RunExecution, exc: Exception) -> RunRecord:
        """The run stopped on an error of its own: fail it, and the steps it left unfinished."""
        if isinstance(exc, RunNotExecutable):
            reason, stage, step_id = exc.reason, exc.stage, exc.step_id
        else:
            log.exception("run %s stopped on an unexpected error; failing it", execution.run.id)
            reason = f"the run stopped on an unexpected error: {describe_error(exc)}"
            stage, step_id = ErrorStage.execution, None
        try:
            await execution.cancel_unfinished(RUN_FAILED)
        except Exception as again:
            if is_outage(again):
                raise
            log.warning("run %s: could not record its unfinished steps", execution.run.id)
        return await self._finish(
            execution.run,
            execution.worker_id,
            RunStatus.failed,
            error=reason,
            error_details=run_failure(reason, stage, exc, step_id),
            steps=execution.steps.values(),
            redactor=execution.redactor,
        )

    async def _finish(
        self,
        run: RunRecord,
        worker_id: str | None,
        status: RunStatus,
        *,
        output: Any = None,
        error: str | None = None,
        error_details: ErrorDetails | None = None,
        steps: Any = (),
        redactor: Redactor = NO_REDACTION,
    ) -> RunRecord:
        tokens = [s.tokens.total for s in steps if s.tokens is not None]
        costs = [s.cost.total for s in steps if s.cost is not None]
        finished = await self.store.runs.finish(
            run.id,
            worker_id,
            status=status,
            output=redactor.data(output),
            error=None if error is None else redactor.text(error),
            error_details=redactor.details(error_details),
            total_tokens=sum(tokens) if tokens else None,
            total_cost=sum(costs) if costs else None,
        )
        self.observer.run_changed(finished)
        return finished


class RunExecution:
    """The state of one run while a worker drives it: its steps, shared by every frame."""

    def __init__(
        self,
        engine: Engine,
        run: RunRecord,
        spec: WorkflowSpec,
        cancel: asyncio.Event,
        worker_id: str | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        graph: WorkflowGraph | None = None,
    ) -> None:
        self.engine = engine
        self.cancel = cancel
        self.run = run
        self.spec = spec
        self.worker_id = worker_id
        self.redactor = Redactor((secrets or {}).values())
        """Masks the run's secret values in everything it records."""
        self.graph = graph or WorkflowGraph(spec)
        self.steps: dict[str, StepRecord] = {}
        self._next_seq = 0
        self._body_graphs: dict[str, WorkflowGraph] = {}
        node_states: dict[str, dict[str, Any]] = {}
        scope: Mapping[str, Any] = {
            "inputs": run.inputs,
            "nodes": node_states,
            "run": {
                "id": str(run.id),
                "workflow_id": str(run.workflow_id),
                "workflow_version": run.workflow_version,
            },
            "secrets": dict(secrets or {}),
        }
        self.top = Frame(self, self.graph, "", [], scope, node_states)
        self.runner = StepRunner(
            run_id=run.id,
            workflow_id=run.workflow_id,
            organization_id=run.organization_id,
            templates=engine.templates,
            services=engine.services,
            defaults=spec.defaults,
            record=self.record,
            limits=engine.limits,
            files=_files_of(engine, run),
            knowledge=_knowledge_of(engine, run),
            worker_id=worker_id,
            defer=self.defer,
        )
        self._deferred: dict[UUID, list[dict[str, Any]]] = {}
        """Events of transitions held for each step's next write (`defer`)."""

    async def execute(self) -> tuple[RunStatus, Any, str | None, ErrorDetails | None]:
        await self._load_steps()
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                cancelled = await self._drive_unless_cancelled()
        except TimeoutError:
            reason = f"the run timed out after {self.spec.timeout_s:g} s"
            await self.cancel_unfinished(reason)
            return RunStatus.failed, None, reason, ErrorDetails(type="TimeoutError", message=reason)
        if cancelled:
            await self.cancel_unfinished(RUN_CANCELLED)
            return RunStatus.cancelled, None, None, None
        if self.top.failures:
            first = self.top.failures[0]
            await self.cancel_unfinished(RUN_FAILED)
            error = f"step '{first.step_id}' failed: {first.error}"
            context = {"node_id": first.node_id, "step_id": first.step_id}
            if first.error_stage is not None:
                context["error_stage"] = first.error_stage.value
            details = (first.error_details or ErrorDetails()).model_copy(
                update={"context": context}
            )
            return RunStatus.failed, None, error, details
        if self.top.waiting:
            return RunStatus.waiting_for_human, None, None, None
        # A loop stopped early (its timeout, or a failed iteration it continued past) may
        # leave body steps it had started: they end with the run, on the record as such.
        await self.cancel_unfinished(CONTAINER_STOPPED)
        try:
            output = self.top.result(self.spec.output)
        except TemplateError as exc:
            error = f"could not resolve the workflow output: {exc.message}"
            return RunStatus.failed, None, error, ErrorDetails(type="TemplateError", message=error)
        try:
            check_output(output, self.engine.limits, path="output")
        except DocumentError as exc:
            error = f"the workflow's output cannot be stored: {exc}"
            return RunStatus.failed, None, error, run_failure(error, ErrorStage.output_storage)
        return RunStatus.completed, output, None, None

    async def _load_steps(self) -> None:
        """Load the steps on record (a resume) and create the missing top-level ones."""
        for step in await self.engine.store.steps.list(self.run.id):
            self.steps[step.step_id] = step
        self._next_seq = max((s.seq for s in self.steps.values()), default=-1) + 1
        await self.ensure_steps(self.graph, "", [])

    async def ensure_steps(
        self,
        graph: WorkflowGraph,
        prefix: str,
        context: list[IterationFrame],
        *,
        loop_id: str | None = None,
        iteration: int | None = None,
        order_base: str = "",
    ) -> None:
        """Create, as pending and in one batch, the steps of a graph not yet on record.

        Each step's order_key is `order_base` (the enclosing loop step's key and the
        iteration, `step_order.iteration_base`; empty at the top) and its node's position in
        the graph's topological order: the order the run's steps are listed in.
        """
        created: list[StepRecord] = []
        for position, node_id in enumerate(graph.topological_order()):
            step_id = prefix + node_id
            if step_id in self.steps:
                continue
            node = graph.nodes[node_id]
            step = StepRecord(
                run_id=self.run.id,
                workflow_id=self.run.workflow_id,
                workflow_version=self.run.workflow_version,
                organization_id=self.run.organization_id,
                user_id=self.run.user_id,
                node_id=node_id,
                step_id=step_id,
                node_type=node.type,
                node_label=node.display_label,
                seq=self._next_seq,
                order_key=order_base + component(position),
                loop_id=loop_id,
                iteration=iteration,
                iteration_context=IterationContext(frames=list(context)) if context else None,
            )
            object.__setattr__(step, "__pydantic_fields_set__", _EVERY_STEP_FIELD)
            self._next_seq += 1
            self.steps[step_id] = step
            created.append(step)
        if created:
            await self.engine.store.steps.insert(created)
            for step in created:
                self.engine.observer.step_changed(step)

    def body_runner(self, frame: Frame, node: NodeSpec, step: StepRecord) -> LoopBody:
        graph = self._body_graphs.get(node.id)
        if graph is None:
            assert node.body is not None  # validation requires a container's body
            graph = WorkflowGraph.from_parts(node.body.nodes, node.body.edges)
            self._body_graphs[node.id] = graph
        return LoopBody(self, frame, node, step, graph)

    async def _drive_unless_cancelled(self) -> bool:
        """Drive the run to its end, or until `cancel` is set (then return True)."""
        if self.cancel.is_set():
            return True
        drive = asyncio.create_task(self.top.drive())
        cancelled = asyncio.create_task(self.cancel.wait())
        try:
            await asyncio.wait({drive, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also on a timeout or when this task is cancelled: no step outlives the drive.
            cancelled.cancel()
            if not drive.done():
                drive.cancel()
                await asyncio.gather(drive, return_exceptions=True)
        if drive.cancelled():
            return True
        drive.result()  # a bug in the drive surfaces here
        return False

    async def cancel_unfinished(self, reason: str) -> None:
        """Mark every unfinished step cancelled (and its attempt in flight), in one batch."""
        now = utcnow()
        unfinished = [s for s in self.steps.values() if s.status not in FINISHED_STEP_STATUSES]
        if not unfinished:
            return
        for step in unfinished:
            step.status = StepStatus.cancelled
            step.status_reason = reason
            step.completed_at = now if step.started_at else None
            if step.started_at is not None:
                step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
            if step.attempts and step.attempts[-1].status in (
                StepStatus.running,
                StepStatus.waiting_for_human,
            ):
                step.attempts[-1].status = StepStatus.cancelled
                step.attempts[-1].completed_at = now
        # Concurrent records share the writer's group commits.
        await asyncio.gather(*(self.record(step) for step in unfinished))

    def defer(self, step: StepRecord) -> None:
        """Hold the step's transition (its event, masked) for the step's next `record`,
        which commits both: a pure step's `running` then costs no commit of its own."""
        step.updated_at = utcnow()
        recorded = self.redactor.step(step)
        self._deferred.setdefault(step.id, []).append(step_event_params(recorded))
        self.engine.observer.step_changed(recorded)

    async def record(self, step: StepRecord) -> None:
        """Write the step as it is now, its secret values masked (the step keeps them),
        with the events of its transitions held by `defer`.

        A record the store refuses (not an outage: its data) is written again as what is
        left of it, failed, and RunNotExecutable fails the run.
        """
        step.updated_at = utcnow()
        recorded = self.redactor.step(step)
        held = self._deferred.pop(step.id, ())
        try:
            await self.engine.store.steps.update(recorded, held=held)
        except Exception as exc:
            if is_outage(exc):
                raise
            error = mark_unstorable(step, exc)
            recorded = self.redactor.step(step)
            await self.engine.store.steps.update(recorded, held=held)
            self.engine.observer.step_changed(recorded)
            raise error from exc
        self.engine.observer.step_changed(recorded)


def _remember(cache: dict[Any, Loaded], key: Any, loaded: Loaded) -> None:
    """Keep `loaded` under `key`, the oldest entry making room past SPEC_CACHE_SIZE."""
    if len(cache) >= SPEC_CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = loaded


def _files_of(engine: Engine, run: RunRecord) -> FileAccess | None:
    """The run's organization's files, if the engine's services have a file storage."""
    storage = engine.services.files
    if storage is None:
        return None
    library = FileLibrary(engine.store, storage, max_bytes=engine.services.max_file_bytes)
    return library.for_organization(run.organization_id)


def _knowledge_of(engine: Engine, run: RunRecord) -> KnowledgeAccess:
    """The run's organization's knowledge collections (files are added to them elsewhere)."""
    return KnowledgeLibrary(engine.store).for_organization(run.organization_id)
