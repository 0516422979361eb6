"""Trigify's documented shapes as models: what its routes answer, and what the OpenAPI
document says they answer (seed 003 and docs.trigify.io's executions list)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ExecutionStatus = Literal["running", "completed", "failed"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]

T = TypeVar("T")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Column(_Shape):
    """One of the workflow's `column_config` mappings, as Trigify spells it."""

    id: str
    stepId: str
    fieldPath: str
    label: str


class Step(_Shape):
    step_id: str = Field(
        description="The node id; a loop iteration's step adds its iteration, as "
        "`loop_iter_0_node` (unique within the execution)."
    )
    step_name: str | None = Field(description="The node's label (its id when it has none).")
    operation: str = Field(description="The node kind: model, code, api_call, for_each...")
    status: StepStatus
    started_at: str = Field(description="When it started; when it was scheduled, if not yet.")
    ended_at: str | None
    duration_ms: int | None
    input: dict[str, Any] = Field(description="The resolved inputs of the node.")
    output: dict[str, Any] | None = Field(
        description="The node's output; an output that is not an object is {'value': ...}."
    )
    mapped_output: dict[str, Any] | None = Field(
        description="{label: value} for each column of column_config naming this node."
    )
    error: str | dict[str, Any] | None


class Execution(_Shape):
    id: str = Field(description="The run's id (stepline keeps one record per execution).")
    run_id: str
    workflow_id: str
    status: ExecutionStatus
    started_at: str
    ended_at: str | None
    duration_ms: int | None
    event_name: str = Field(description="What started the run: api, cli, replay, schedule...")
    created: str
    column_config: list[Column] | None
    steps: list[Step] = Field(description="In execution order.")
    error: str | None


class ExecutionSummary(_Shape):
    run_id: str
    status: ExecutionStatus
    started_at: str
    completed_at: str | None
    duration: int | None = Field(description="Milliseconds.")
    error: str | None


class Pagination(_Shape):
    page: int
    page_size: int
    total_count: int
    total_pages: int


class ExecutionList(_Shape):
    executions: list[ExecutionSummary] = Field(description="Newest first.")
    pagination: Pagination


class Success(_Shape, Generic[T]):
    success: Literal[True] = True
    data: T


class ErrorBody(_Shape):
    code: str = Field(description="VALIDATION_ERROR, AUTH_REQUIRED, INVALID_API_KEY, NOT_FOUND...")
    message: str
    details: dict[str, Any] | None = Field(
        default=None, description="{'errors': ['query.page_size: ...', ...]} for a bad request."
    )
    suggestion: str | None = Field(default=None, description="What to do about it.")


class Failure(_Shape):
    success: Literal[False] = False
    error: ErrorBody
