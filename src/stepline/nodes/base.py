"""The one small interface every node kind implements, and what it is given to run.

A node kind computes; the engine records. A kind never touches the store or the API: it
receives one `NodeContext` (so adding a field never breaks a plugin) and returns a
`NodeResult` or raises `NodeError`.
"""

from __future__ import annotations

import builtins
import traceback as traceback_module
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel

from stepline.records import CostBreakdown, ErrorCategory, ErrorDetails, ErrorStage, TokenUsage
from stepline.spec.models import NodeSpec

if TYPE_CHECKING:
    import httpx

    from stepline.files import FileAccess, FileStorage
    from stepline.providers.client import ClientPool
    from stepline.retrieval.access import KnowledgeAccess
    from stepline.sandbox import SandboxPool


@dataclass
class NodeServices:
    """Long-lived resources the engine lends to node kinds for the life of a worker."""

    http: httpx.AsyncClient | None = None
    sandbox: SandboxPool | None = None
    llm: ClientPool | None = None
    """Language-model clients by endpoint (connections reused across steps)."""
    files: FileStorage | None = None
    """Where file contents live; the engine gives each step its organization's files
    over it (`NodeContext.files`)."""
    max_file_bytes: int = 50 * 1024 * 1024
    """The largest file a step may store (STEPLINE_MAX_FILE_BYTES)."""


@dataclass(frozen=True)
class IterationOutcome:
    """How one iteration of a container's body ended."""

    index: int
    status: Literal["completed", "error", "waiting"]
    output: Any = None
    error: str | None = None
    """For an error: which body step failed and why."""
    failed_step_id: str | None = None


class BodyRunner(Protocol):
    """Runs a container's body, one iteration at a time; the engine provides it.

    Every step of an iteration is recorded with the container's `loop_id`, the iteration
    and the container hierarchy; an iteration whose steps are already on record (a
    resume) is not executed again.
    """

    async def run_iteration(self, index: int, loop: Mapping[str, Any]) -> IterationOutcome:
        """Run iteration `index` with `loop` (item, index, previous...) in the template scope."""
        ...

    def evaluate(self, expression: str, loop: Mapping[str, Any]) -> Any:
        """Evaluate an expression in the scope iteration `loop["index"]` would see."""
        ...


@dataclass(frozen=True)
class ChildOutcome:
    """How a child run (a sub_workflow) ended."""

    run_id: UUID
    status: str
    output: Any = None
    error: str | None = None


class ChildRuns(Protocol):
    """Starts and follows child runs of the current step; the engine provides it."""

    async def run(self, workflow: str, version: int | None, inputs: dict[str, Any]) -> ChildOutcome:
        """Run (or, on a resume, find and continue) this step's child run to its end."""
        ...


class NodePaused(Exception):
    """The step cannot finish until a person acts (e.g. a loop body waits for a review).

    The step becomes `waiting_for_human`; when the run resumes, the kind runs again and
    finds its finished work on record.
    """


@dataclass
class NodeContext:
    """Everything a node kind needs to run one step."""

    run_id: UUID
    workflow_id: UUID
    organization_id: UUID
    node: NodeSpec
    step_id: str
    attempt: int
    inputs: dict[str, Any]
    """The node's config with its templates resolved (the record shows
    `NodeKind.recorded_inputs` of it)."""
    config: BaseModel
    """`inputs` validated by the kind's `config_model`."""
    timeout_s: float | None
    evaluate: Callable[[str], Any]
    """Evaluates an expression (e.g. a conditional's `when`) in the step's template scope."""
    scope: Mapping[str, Any]
    services: NodeServices = field(default_factory=NodeServices)
    body: BodyRunner | None = None
    """For a container kind: runs its body's iterations."""
    children: ChildRuns | None = None
    """Runs child runs (sub_workflow) linked to this step."""
    files: FileAccess | None = None
    """The run's organization's files (read a run's file references, store new files);
    None where the engine has no file storage."""
    knowledge: KnowledgeAccess | None = None
    """The run's organization's knowledge collections (search them)."""


@dataclass
class NodeResult:
    """What a step produced."""

    output: Any = None
    handle: str | None = None
    """The output handle that is active; None is the default output."""
    handle_inputs: dict[str, Any] | None = None
    handle_outputs: dict[str, Any] | None = None
    model: str | None = None
    tokens: TokenUsage | None = None
    cost: CostBreakdown | None = None
    trace_spans: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    """Lands in the step's `step_metadata` (e.g. a code step's stdout and stderr)."""
    input_document: dict[str, Any] | None = None
    """The document the step read, {file_id, filename, mime_type} (Retab's steps)."""
    output_document: dict[str, Any] | None = None
    """The document the step made."""
    split_documents: dict[str, Any] | None = None
    """A split's sub-documents by name."""


class NodeError(Exception):
    """A step failed; says how (category) and where (stage), for the record and for retries."""

    def __init__(
        self,
        message: str,
        *,
        category: ErrorCategory = ErrorCategory.permanent,
        stage: ErrorStage = ErrorStage.execution,
        details: ErrorDetails | None = None,
        retry_after_s: float | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
        tokens: TokenUsage | None = None,
        cost: CostBreakdown | None = None,
        trace_spans: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.stage = stage
        self.details = details or ErrorDetails(type=type(self).__name__, message=message)
        self.retry_after_s = retry_after_s
        self.metadata = metadata
        # What a failed step still spent (a model call whose answer was refused): on the
        # record like a completed step's, so a run's tokens and cost count it.
        self.model = model
        self.tokens = tokens
        self.cost = cost
        self.trace_spans = trace_spans
        # What a failed step had read (the document it could not parse, or asked a model
        # about): on the record, so a failure says which file it was about.
        self.handle_inputs: dict[str, Any] | None = None
        self.input_document: dict[str, Any] | None = None

    def having_read(
        self, handle_inputs: dict[str, Any], input_document: dict[str, Any] | None
    ) -> NodeError:
        """This error, recording what the step had read before it failed."""
        self.handle_inputs = handle_inputs
        self.input_document = input_document
        return self

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        category: ErrorCategory = ErrorCategory.permanent,
        stage: ErrorStage = ErrorStage.execution,
    ) -> NodeError:
        message = f"{type(exc).__name__}: {exc}"
        details = ErrorDetails(
            type=type(exc).__name__,
            message=str(exc),
            traceback="".join(traceback_module.format_exception(exc)),
        )
        return cls(message, category=category, stage=stage, details=details)


class NodeKind(ABC):
    """A kind of node: its config model, its output handles and how it runs."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[BaseModel]]
    description: ClassVar[str] = ""
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    """Top-level config fields left as written (code, expressions), not rendered as templates."""
    expression_fields: ClassVar[frozenset[str]] = frozenset()
    """Raw fields holding Jinja expressions (without braces); validation checks their names."""
    inbound: ClassVar[Literal["any", "none"]] = "any"
    outbound: ClassVar[Literal["any", "none"]] = "any"
    container: ClassVar[bool] = False
    """A container (a loop) has a `body` sub-graph, run through `NodeContext.body`."""
    always_review: ClassVar[bool] = False
    """Every step of this kind waits for a person's decision (the `hil` kind)."""
    pure: ClassVar[bool] = False
    """Running a step of this kind again changes nothing but its record (no calls, files,
    sub-runs or side effects): its `running` transition is committed with its outcome, in
    one transaction, rather than on its own before it runs."""
    records_run_context: ClassVar[bool] = False
    """The step's recorded inputs also carry `run_id` and `input_data` (the run's inputs
    and each completed node's output by node id), as Arcee's steps show them."""

    def output_handles(self, config: BaseModel) -> frozenset[str] | None:
        """The named output handles edges may follow; None means only the default output."""
        return None

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Each (JSON path below config, expression) in the raw config, for validation."""
        return []

    def recorded_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """What the step record shows of its resolved inputs (the kind still gets them
        whole): a kind masks here what must never be on the record, e.g. credentials."""
        return inputs

    @abstractmethod
    async def run(self, ctx: NodeContext) -> NodeResult:
        """Run one step. Raise NodeError for a failure that belongs on the record."""
