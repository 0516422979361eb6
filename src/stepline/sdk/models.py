"""The SDK's typed models: the canonical records as the API sends them.

They subclass the records of `stepline.records` where the wire shape is the record's, and
ignore fields they do not know, so that a newer server does not break an older client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from stepline.records import (
    FINISHED_RUN_STATUSES,
    SETTLED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    WorkflowRecord,
    WorkflowVersion,
)

T = TypeVar("T")

TERMINAL_RUN_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})

_LENIENT = ConfigDict(extra="ignore")


class Step(StepRecord):
    """A step record. With `include_io=False` its inputs and outputs are None."""

    model_config = _LENIENT


class Run(RunRecord):
    """A run with its step counts; `steps` is filled when the server waited for the end."""

    model_config = _LENIENT

    total_steps: int = 0
    finished_steps: int = 0
    steps: list[Step] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run reached a terminal state (completed, failed or cancelled)."""
        return self.status in FINISHED_RUN_STATUSES

    @property
    def settled(self) -> bool:
        """Whether the run will not move on by itself: finished, or waiting for a review."""
        return self.status in SETTLED_RUN_STATUSES


class Review(Step):
    """A step waiting for a person's decision; `review_url` is where the decision goes."""

    review_url: str | None = None


class ReviewResult(BaseModel):
    """What a review decision did: the step and run as they are now, and whether the
    decision changed anything (False: this same decision had already been recorded)."""

    model_config = _LENIENT

    changed: bool
    step: Step
    run: Run


class Workflow(WorkflowRecord):
    """A workflow with the definition of its latest version."""

    model_config = _LENIENT

    definition: dict[str, Any] | None = None


class File(BaseModel):
    """A stored file; a run's inputs refer to it as `{"file_id": str(file.id)}`."""

    model_config = _LENIENT

    id: UUID
    filename: str
    mime_type: str
    size: int
    sha256: str
    created_at: datetime | None = None

    def reference(self) -> dict[str, str]:
        """How a run's inputs refer to this file."""
        return {"file_id": str(self.id)}


class Secret(BaseModel):
    """A secret's name, place and times: its value is never sent back."""

    model_config = _LENIENT

    name: str
    id: UUID | None = None
    organization_id: UUID | None = None
    workspace_id: UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Version(WorkflowVersion):
    """One immutable version of a workflow's definition."""

    model_config = _LENIENT


class ValidationIssue(BaseModel):
    model_config = _LENIENT

    path: str = ""
    message: str
    node_id: str | None = None
    code: str | None = None


class ValidationResult(BaseModel):
    """What `POST /v1/workflows/validate` says of a definition."""

    model_config = _LENIENT

    valid: bool
    errors: list[ValidationIssue] = Field(default_factory=list)


class RunSummary(BaseModel):
    """How a workflow's runs created in [since, until) went."""

    model_config = _LENIENT

    workflow_id: UUID
    since: datetime
    until: datetime
    total: int
    counts: dict[str, int] = Field(default_factory=dict)
    success_rate: float | None = None
    p50_duration_ms: int | None = None
    p95_duration_ms: int | None = None
    total_tokens: int = 0
    total_cost: float = 0.0


class RunData(BaseModel):
    """A run's output and the value of each end node."""

    model_config = ConfigDict(extra="allow")

    run_id: Any = None
    status: str | None = None
    output: Any = None
    end_nodes: Any = None


class StepChange(BaseModel):
    """What a `step.<status>` event says of the step: enough to draw it, not the record
    (`client.runs.steps.get(workflow_id, run_id, change.id)` reads the whole record)."""

    model_config = _LENIENT

    id: UUID | None = Field(default=None, description="The step record's UUID.")
    step_id: str
    node_id: str | None = None
    status: StepStatus
    status_reason: str | None = None
    iteration: int | None = None
    loop_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None


class Event(BaseModel):
    """One Server-Sent Event of a run: a step or a run transition, in commit order.

    `type` is `run.<status>` or `step.<status>`; `data` is the transition's payload, which
    `step_change` and `run_status` read.
    """

    model_config = _LENIENT

    id: int | None = None
    type: str
    data: Any = None
    run_id: UUID | None = None
    step_record_id: UUID | None = Field(
        default=None, description="For step events: the step record's UUID."
    )
    created_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the run ended with this event (nothing follows it)."""
        return self.type in TERMINAL_RUN_EVENTS

    @property
    def step_change(self) -> StepChange | None:
        if not self.type.startswith("step.") or not isinstance(self.data, dict):
            return None
        try:
            return StepChange.model_validate({"id": self.step_record_id, **self.data})
        except ValueError:
            return None

    @property
    def run_status(self) -> RunStatus | None:
        if not self.type.startswith("run."):
            return None
        try:
            return RunStatus(self.type.removeprefix("run."))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list endpoint and the cursors to its neighbours (None at either end)."""

    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None


class Collection(BaseModel):
    """A knowledge collection: a named set of chunks the organization searches."""

    model_config = _LENIENT

    id: UUID
    name: str
    description: str = ""
    embedding_model: str | None = None
    embedding_provider: str | None = None
    created_at: datetime | None = None


class CollectionSource(BaseModel):
    """What was added to a collection at once (a text or a file), as its chunks."""

    model_config = _LENIENT

    source_id: UUID
    collection_id: UUID
    file_id: UUID | None = None
    source: str
    chunk_count: int
    created_at: datetime | None = None


class SearchHit(BaseModel):
    """A chunk a search found, with its score (higher first) and where it is from."""

    model_config = _LENIENT

    text: str
    score: float
    file_id: UUID | None = None
    source: str
    source_id: UUID | None = None
    position: int
    page: int | None = None
    char_start: int
    char_end: int
    chunk_id: UUID | None = None


class SearchResults(BaseModel):
    """A search's answer: the collection searched and its best chunks, best first."""

    model_config = _LENIENT

    collection_id: UUID
    collection: str
    query: str
    ranking: str = "bm25"
    count: int
    results: list[SearchHit] = Field(default_factory=list)
