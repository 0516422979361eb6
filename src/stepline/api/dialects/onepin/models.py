"""Onepin's shapes as pydantic models, for the OpenAPI document only: the routes answer
with the dicts of `shapes` (serialized once), and these say what those dicts hold, so
that a client generated from the document, and the fuzzing tier, see the real shapes."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Item = TypeVar("Item")

RunStatusName = Literal["pending", "running", "completed", "failed", "cancelled", "paused"]
StepStatusName = Literal[
    "pending", "running", "completed", "skipped", "failed", "cancelled", "paused"
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Meta(_Shape):
    request_id: str | None
    timestamp: str = Field(description="When the answer was made (ISO-8601, UTC, Z).")


class Pagination(_Shape):
    next: str | None = Field(description="The next page's URL; null on the last page.")
    prev: str | None = Field(description="The previous page's URL; null on the first page.")
    limit: int
    total: int


class OnepinErrorDetail(_Shape):
    field: str
    message: str


class OnepinErrorBody(_Shape):
    code: str = Field(description="VALIDATION_ERROR, INVALID_API_KEY, NOT_FOUND...")
    message: str
    details: list[OnepinErrorDetail] | None = Field(default=None, description="Each bad field.")


class OnepinErrorEnvelope(_Shape):
    """Every failure under /onepin."""

    error: OnepinErrorBody
    meta: Meta


_FAILURE_DESCRIPTIONS = {
    401: "No API key, or an unknown, revoked or expired one (INVALID_API_KEY).",
    403: "The key lacks the scope this operation needs (FORBIDDEN).",
    404: "No such workflow or run in the key's organization (NOT_FOUND).",
    409: "The record's state does not allow it (CONFLICT).",
    413: "The body is larger than the server accepts (PAYLOAD_TOO_LARGE).",
    422: "A path id, query parameter or body field is not valid (VALIDATION_ERROR).",
    500: "The server failed (INTERNAL_ERROR).",
}


def failures(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries: each status answered in Onepin's error envelope."""
    return {
        status: {"model": OnepinErrorEnvelope, "description": _FAILURE_DESCRIPTIONS[status]}
        for status in statuses
    }


class Envelope(_Shape, Generic[Item]):
    data: Item
    meta: Meta


class ListEnvelope(_Shape, Generic[Item]):
    data: list[Item]
    pagination: Pagination
    meta: Meta


class Run(_Shape):
    id: str
    workflow_id: str
    status: RunStatusName
    run_number: int
    total_nodes: int | None
    total_steps: int
    finished_steps: int
    finished_nodes: int | None
    started_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str
    error: str | None
    token_cost: int
    credits: int | None


class RunLight(_Shape):
    id: str
    workflow_id: str
    status: RunStatusName
    started_at: str | None
    completed_at: str | None
    updated_at: str
    error: str | None


class Step(_Shape):
    """One execution attempt of a node."""

    id: str = Field(description="uuid5 of the step record's id and the attempt number.")
    node_id: str
    node_type: str = Field(description="stepline's node kind.")
    node_display_name: str | None
    status: StepStatusName
    iteration: int | None = Field(description="From 1; 1 outside any loop.")
    started_at: str | None
    completed_at: str | None
    result: dict[str, Any] | None
    has_result: bool | None
    active_ports: list[str] | None
    error: str | None


class NodeState(_Shape):
    node_id: str
    node_type: str
    node_display_name: str | None
    status: StepStatusName
    iteration: int | None
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    error: str | None


class RunOverview(Run):
    node_states: list[NodeState]


class RunsSummary(_Shape):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: str | None = Field(alias="from")
    until: str | None = Field(alias="to")
    total_runs: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int
    paused: int
    pass_rate: float | None = Field(description="completed / finished; null if none finished.")
    average_duration_seconds: float | None


class PlannedNode(_Shape):
    order: int
    node_id: str
    node_type: str
    node_display_name: str
    parent_node_id: str | None


class PreviewIssue(_Shape):
    field: str
    message: str


class RunPreview(_Shape):
    workflow_id: str
    version: int
    valid: bool
    errors: list[PreviewIssue]
    total_nodes: int
    nodes: list[PlannedNode]


class RunStatusCounts(_Shape):
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int
    paused: int


class Workflow(_Shape):
    id: str
    user_id: str
    name: str
    description: str | None
    definition: dict[str, Any]
    created_at: str
    updated_at: str
    runs_count: int
    last_run_at: str | None
    last_run_status: RunStatusName | None
    run_status_counts: RunStatusCounts


class Upload(_Shape):
    id: str
    filename: str
    content_type: str
    size: int
    created_at: str


class DownloadLink(_Shape):
    url: str
    filename: str
    expires_at: str


class Export(_Shape):
    run: Run
    node_id: str | None
    steps: list[Step]
