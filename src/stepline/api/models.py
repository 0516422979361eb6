"""The API's response shapes beyond the canonical records of `stepline.records`."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from stepline.records import FINISHED_STEP_STATUSES, RunRecord, StepRecord, WorkflowRecord

T = TypeVar("T")


class ListResponse(BaseModel, Generic[T]):
    """One page of a listing; pass a cursor back as `after` / `before` for the next one."""

    data: list[T]
    next_cursor: str | None = Field(
        default=None, description="Cursor of the next page (pass as `after`); null at the end."
    )
    prev_cursor: str | None = Field(
        default=None,
        description="Cursor of the previous page (pass as `before`); null at the start.",
    )


class WorkflowOut(WorkflowRecord):
    definition: dict[str, Any] = Field(description="The latest version's definition.")


class RunOut(RunRecord):
    total_steps: int = 0
    finished_steps: int = 0
    steps: list[StepRecord] | None = Field(
        default=None, description="Every step, when the run was awaited with ?wait=true."
    )

    @classmethod
    def of(cls, run: RunRecord, steps: list[StepRecord] | None = None) -> RunOut:
        counts = run.step_counts or {}
        finished = sum(n for status, n in counts.items() if status in FINISHED_STEP_STATUSES)
        return cls(
            **dict(run),
            total_steps=sum(counts.values()),
            finished_steps=finished,
            steps=steps,
        )


class Health(BaseModel):
    status: str = "ok"
    version: str
    database: str
    worker: bool
