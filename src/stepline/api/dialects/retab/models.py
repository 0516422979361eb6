"""The Retab dialect's answers as models, for the OpenAPI document (the routes build them
as plain dicts in `shapes`, and a test checks the two agree)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from stepline.api.dialects.retab.vocabulary import (
    BlockType,
    RunLifecycleStatus,
    SeedNodeType,
    SeedRunStatus,
)
from stepline.records import ErrorCategory, ErrorStage, StepStatus


class SeedErrorDetails(BaseModel):
    message: str | None = None
    stack_trace: str | None = None
    block_id: str | None = None
    block_name: str | None = None
    error_code: str | None = None
    context: dict[str, Any] | None = None


class Container(BaseModel):
    container_id: str
    iteration: int = Field(description="0-based.")
    is_parallel: bool
    parallel_item_index: int | None = None


class IterationContextData(BaseModel):
    containers: list[Container] = Field(description="Outermost first.")


class SeedStep(BaseModel):
    """Seed 004's step; keys whose value is null are left out."""

    node_id: str
    node_type: SeedNodeType
    node_label: str
    status: StepStatus
    run_id: str = ""
    organization_id: str = ""
    step_id: str = Field(default="", description="The node id qualified by its iterations.")
    started_at: str | None = None
    completed_at: str | None = None
    duration_ms: int | None = None
    error: str | None = None
    error_stage: ErrorStage | None = None
    error_category: ErrorCategory | None = None
    error_details: SeedErrorDetails | None = None
    model: str | None = None
    cost: dict[str, Any] | None = None
    tokens: dict[str, Any] | None = None
    trace_spans: list[dict[str, Any]] | None = None
    output: dict[str, Any] | None = None
    handle_outputs: dict[str, Any] | None = None
    handle_inputs: dict[str, Any] | None = None
    input_document: dict[str, Any] | None = None
    output_document: dict[str, Any] | None = None
    split_documents: dict[str, Any] | None = None
    requires_human_review: bool | None = None
    human_reviewed_at: str | None = None
    human_review_approved: bool | None = None
    retry_count: int | None = None
    loop_id: str | None = None
    iteration: int | None = None
    iteration_context: IterationContextData | None = None
    created_at: str | None = None
    updated_at: str | None = None


class FileRef(BaseModel):
    id: str
    filename: str = Field(description="'' when the file was deleted since.")
    mime_type: str


class Handle(BaseModel):
    type: Literal["file", "json"]
    document: FileRef | None
    data: Any = Field(description="A JSON handle's value; null for a file handle.")


class PlainLifecycle(BaseModel):
    status: Literal["pending", "queued", "running", "completed"]


class ReviewLifecycle(BaseModel):
    status: Literal["awaiting_review"]


class ErrorLifecycle(BaseModel):
    status: Literal["error"]
    message: str
    stage: ErrorStage | None
    category: ErrorCategory | None
    details: SeedErrorDetails | None


class EndedLifecycle(BaseModel):
    status: Literal["skipped", "cancelled"]
    reason: str


class TodayStep(BaseModel):
    """Today's step (Retab's current SDK)."""

    block_id: str
    step_id: str
    block_type: BlockType
    block_label: str
    run_id: str
    started_at: str | None
    completed_at: str | None
    created_at: str | None
    model: str | None
    retry_count: int
    handle_inputs: dict[str, Handle]
    handle_outputs: dict[str, Handle]
    loop_containers: list[Container]
    artifact: dict[str, str] | None
    lifecycle: PlainLifecycle | ReviewLifecycle | ErrorLifecycle | EndedLifecycle = Field(
        discriminator="status"
    )


class ListMetadata(BaseModel):
    before: str | None
    after: str | None


class StepPage(BaseModel):
    data: list[TodayStep]
    list_metadata: ListMetadata


class StepSummary(BaseModel):
    node_id: str
    step_id: str
    node_type: SeedNodeType
    node_label: str
    status: StepStatus
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    error: str | None


class Trigger(BaseModel):
    type: Literal["manual", "api", "schedule", "webhook", "email", "custom", "restart"]


class RunLifecycle(BaseModel):
    """Discriminated by `status`: `awaiting_review` names the blocks waiting, `error` says
    why (from the first failed step), `cancelled` may give a reason."""

    status: RunLifecycleStatus
    waiting_for_block_ids: list[str] | None = None
    message: str | None = None
    stage: ErrorStage | None = None
    category: ErrorCategory | None = None
    details: SeedErrorDetails | None = None
    failing_step_id: str | None = None
    reason: str | None = None


class Timing(BaseModel):
    created_at: str
    started_at: str | None
    completed_at: str | None


class RunInputs(BaseModel):
    documents: dict[str, FileRef]
    json_data: dict[str, Any]


class Run(BaseModel):
    """The run: seed 004's fields and today's, in one object."""

    id: str
    workflow_id: str
    workflow_name: str
    organization_id: str
    status: SeedRunStatus
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    steps: list[StepSummary]
    final_outputs: dict[str, Any] | None
    error: str | None
    created_at: str
    updated_at: str
    waiting_for_node_ids: list[str]
    workflow_version_id: str
    trigger: Trigger
    lifecycle: RunLifecycle
    timing: Timing
    inputs: RunInputs
    metadata: dict[str, Any]


class CancelledRun(BaseModel):
    """Today's answer to a cancel."""

    run: Run
    cancellation_status: Literal["cancelled", "cancellation_requested", "cancellation_failed"]
