"""Arcee Orchestra's documented shapes as models, for the OpenAPI document: what each route
answers (seeds 000 and 001 and the Orchestra API pages they name). The routes build their
answers with `shapes` and `diagram`; these say what those are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StepStatus = Literal["pending", "running", "completed", "skipped", "failed", "cancelled"]
RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArceeStep(_Shape):
    """One step of a run (seed 000)."""

    id: str = Field(description="The step record's id (a UUID, not the node id).")
    user_id: str | None
    organization_id: str
    node_id: str
    status: StepStatus
    start_time: str | None = Field(description="UTC, microseconds, Z; null until it starts.")
    end_time: str | None
    elapsed_time: int = Field(description="Whole seconds, truncated; to now while running.")
    error: str | None
    outputs: Any = Field(description="The node's output ({} before there is one).")
    inputs: dict[str, Any] = Field(
        description="The node's resolved config, `run_id` and `input_data` ({} before it "
        "resolved its inputs)."
    )
    step_metadata: dict[str, Any] | None
    tokens: int = Field(description="Tokens the step used in all.")


class ArceeRun(_Shape):
    """One run, as the execution history and workflow runs APIs list it."""

    id: str = Field(description="The run's id.")
    status: RunStatus
    start_time: str | None
    end_time: str | None
    elapsed_time: int
    error: str | None
    outputs: Any = Field(description="The run's output (null until it completes).")
    all_outputs: dict[str, Any] = Field(
        description="The run's inputs and every completed node's output, by node id."
    )
    inputs: dict[str, Any]


class ArceeGraph(_Shape):
    settings: dict[str, Any]
    input_data: dict[str, Any] = Field(description="Each declared input with its default.")
    description: str
    nodes: dict[str, Any] = Field(description="By node id: {type, metadata}.")
    edges: list[list[str]] = Field(description="[from, to] pairs, from START and to END.")
    entry_point: str | None
    finish_point: str | None
    selectedOutput: str | None
    node_metadata: str | None


class ArceeWorkflow(_Shape):
    """One workflow, as `GET /workflows` lists it."""

    workflow_id: str
    user_id: str | None
    organization_id: str
    created_at: str = Field(description="As 2025-03-12 00:59:55.465508+00:00.")
    created_by: str | None
    description: str
    file_metadata: dict[str, Any] | None
    graph: ArceeGraph
    name: str
    status: str
    updated_at: str
    updated_by: str | None
    version: str
    public: bool


class ArceeExecution(_Shape):
    message: str = Field(description="Workflow execution started")
    run_id: str


class ArceeDiagram(_Shape):
    diagram: str = Field(description="Mermaid source: graph TD ...")


class ArceeProblem(_Shape):
    loc: list[str | int] = Field(description="Where: ['path', 'run_id'], ['query', 'limit']...")
    msg: str
    type: str


class ArceeError(_Shape):
    """Every failure: a message, or for a request that does not validate each problem."""

    detail: str | list[ArceeProblem]
