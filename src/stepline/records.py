"""The canonical records: one run, one step per node execution.

These models are the vocabulary shared by the engine, the store, the API, the CLI and the
vendor dialects. The step record is the union of the four seed step APIs (see
shared/DESIGN.md); every field exists from the first table on and is null where it does
not apply yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from stepline.step_order import seq_key


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every stored timestamp is)."""
    return datetime.now(UTC)


def new_id() -> UUID:
    return uuid4()


class StepStatus(StrEnum):
    pending = "pending"
    queued = "queued"
    running = "running"
    completed = "completed"
    skipped = "skipped"
    error = "error"
    waiting_for_human = "waiting_for_human"
    cancelled = "cancelled"


FINISHED_STEP_STATUSES = frozenset(
    {StepStatus.completed, StepStatus.skipped, StepStatus.error, StepStatus.cancelled}
)


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    waiting_for_human = "waiting_for_human"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


INPUT_JSON_HANDLE = "input-json-0"
OUTPUT_JSON_HANDLE = "output-json-0"
"""The handles a step's JSON inputs and outputs are shown under when its kind records no
handles of its own (seed 004's names; `StepRecord.handle_inputs`, `store.step_json`)."""
FINISHED_RUN_STATUSES = frozenset({RunStatus.completed, RunStatus.failed, RunStatus.cancelled})
SETTLED_RUN_STATUSES = FINISHED_RUN_STATUSES | {RunStatus.waiting_for_human}
"""A run in one of these does not move on by itself: it ended, or it waits for a person."""


class ErrorStage(StrEnum):
    """Which stage of a step failed (Retab's enumeration)."""

    input_collection = "input_collection"
    registry_lookup = "registry_lookup"
    document_fetch = "document_fetch"
    execution = "execution"
    output_storage = "output_storage"
    routing = "routing"
    history_payload = "history_payload"


class ErrorCategory(StrEnum):
    """What a failure means for a retry: transient and quota may succeed on a later try."""

    transient = "transient"
    permanent = "permanent"
    quota = "quota"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class ErrorDetails(_Record):
    """What a developer needs to debug a failed step."""

    type: str | None = None
    message: str | None = None
    traceback: str | None = None
    error_code: str | None = None
    context: dict[str, Any] | None = None


class TokenUsage(_Record):
    prompt: int = 0
    completion: int = 0
    total: int = 0


class CostBreakdown(_Record):
    """What a step cost; a step whose price is not known has no breakdown (null), not 0.

    The parts are given under both names the seeds use: `prompt`/`completion` and
    `input`/`output`.
    """

    total: float = 0.0
    prompt: float | None = None
    completion: float | None = None
    input: float | None = None
    output: float | None = None
    currency: str = "USD"


class Attempt(_Record):
    """One try of a step; a step that is retried stays one record with several attempts."""

    number: int
    started_at: datetime
    completed_at: datetime | None = None
    status: StepStatus
    error: str | None = None
    error_category: ErrorCategory | None = None


class IterationFrame(_Record):
    """One enclosing container (a loop) of a step and the iteration it is in."""

    container_id: str
    container_type: str
    iteration: int


class IterationContext(_Record):
    """The container hierarchy of a step, outermost first."""

    frames: list[IterationFrame] = Field(default_factory=list)


class StepRecord(_Record):
    """One execution of one node in one iteration context."""

    id: UUID = Field(default_factory=new_id)
    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    organization_id: UUID
    user_id: UUID | None = None
    node_id: str
    step_id: str
    node_type: str
    node_label: str
    seq: int = Field(
        description="Creation order within the run (a loop's iterations are "
        "created as they start, so after the top-level steps)."
    )
    order_key: str = Field(
        default="",
        description="Where the step sorts in the run: the order the workflow runs its nodes "
        "(topological order, each loop followed by its iterations in order). Steps are "
        "listed by (order_key, step_id). Compare as plain strings; do not parse. Left "
        "empty, it is derived from seq.",
    )
    status: StepStatus = StepStatus.pending
    status_reason: str | None = Field(
        default=None, description="Why the step has its status, e.g. why it was skipped."
    )
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    inputs: Any = None
    outputs: Any = None
    handle_inputs: dict[str, Any] | None = Field(
        default=None,
        description="What the step received, by input handle: `input-file-<n>` "
        "({type: file, document}) for the documents a document kind read, else "
        "`input-json-0` ({type: json, data}) holding its resolved `inputs`.",
    )
    handle_outputs: dict[str, Any] | None = Field(
        default=None,
        description="What the step produced, by output handle: `output-file-<name>` for "
        "the documents it made, the taken branch's handle for a conditional or classifier, "
        "else `output-json-0` ({type: json, data}) holding its `outputs`.",
    )
    input_document: dict[str, Any] | None = Field(
        default=None, description="The document the step read: {file_id, filename, mime_type}."
    )
    output_document: dict[str, Any] | None = Field(
        default=None, description="The document the step made: {file_id, filename, mime_type}."
    )
    split_documents: dict[str, Any] | None = Field(
        default=None, description="A split's sub-documents: name -> {file_id, filename, ...}."
    )
    error: str | None = None
    error_stage: ErrorStage | None = None
    error_category: ErrorCategory | None = None
    error_details: ErrorDetails | None = None
    model: str | None = None
    tokens: TokenUsage | None = None
    cost: CostBreakdown | None = None
    retry_count: int = 0
    attempts: list[Attempt] = Field(default_factory=list)
    loop_id: str | None = None
    iteration: int | None = None
    iteration_context: IterationContext | None = None
    requires_human_review: bool | None = None
    human_reviewed_at: datetime | None = None
    human_review_approved: bool | None = None
    human_reviewer: str | None = None
    trace_spans: list[dict[str, Any]] | None = None
    step_metadata: dict[str, Any] | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _placed(self) -> StepRecord:
        if not self.order_key:
            self.order_key = seq_key(self.seq)
        return self

    @field_serializer("handle_inputs")
    def _shown_handle_inputs(self, recorded: dict[str, Any] | None) -> dict[str, Any] | None:
        # Kinds that read documents record their handles; for every other step the JSON
        # handle is its inputs, shown here rather than stored twice.
        if recorded is None and self.inputs is not None:
            return {INPUT_JSON_HANDLE: {"type": "json", "data": self.inputs}}
        return recorded

    @field_serializer("handle_outputs")
    def _shown_handle_outputs(self, recorded: dict[str, Any] | None) -> dict[str, Any] | None:
        if recorded is None and self.outputs is not None:
            return {OUTPUT_JSON_HANDLE: {"type": "json", "data": self.outputs}}
        return recorded


class RunRecord(_Record):
    """One execution of one pinned workflow version."""

    id: UUID = Field(default_factory=new_id)
    workflow_id: UUID
    workflow_version: int
    organization_id: UUID
    workspace_id: UUID | None = None
    user_id: UUID | None = None
    run_number: int = 0
    status: RunStatus = RunStatus.queued
    trigger: str = Field(default="api", description="What started the run: api, cli, replay...")
    inputs: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    error_details: ErrorDetails | None = None
    attempt: int = Field(default=0, description="How many times a worker has claimed the run.")
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    parent_run_id: UUID | None = None
    parent_step_id: UUID | None = None
    replay_of: UUID | None = None
    idempotency_key: str | None = None
    concurrency_limit: int | None = Field(
        default=None,
        description="The pinned version's `concurrency`: how many runs of the workflow may "
        "run at once across the fleet (null: no limit).",
    )
    total_tokens: int | None = None
    total_cost: float | None = None
    cancel_requested_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    duration_ms: int | None = None
    step_counts: dict[str, int] | None = Field(
        default=None, description="Steps per status; filled in when read, never stored."
    )


class WorkflowRecord(_Record):
    id: UUID = Field(default_factory=new_id)
    organization_id: UUID
    workspace_id: UUID | None = None
    name: str
    description: str = ""
    latest_version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkflowVersion(_Record):
    id: UUID = Field(default_factory=new_id)
    workflow_id: UUID
    version: int
    definition: dict[str, Any]
    digest: str = Field(description="sha256 of the definition's canonical JSON.")
    created_at: datetime = Field(default_factory=utcnow)
