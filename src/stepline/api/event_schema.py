"""The documented shape of the run events that `GET .../runs/{run_id}/events` streams.

Each Server-Sent Event has `id` (the event id), `event` (its type) and `data` (the event
as JSON: a `RunTransitionEvent` or a `StepTransitionEvent`). These models only describe:
the stream writes the store's `RunEvent` as it is, and the tests check every event
against the published document. The listed fields of an event's `data` are always
there (null where they do not apply); `data` may gain fields, so that adding one later
breaks no client that validates.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from stepline.records import RunStatus, StepStatus


def _types(prefix: str, statuses: type[StrEnum]) -> list[str]:
    return [f"{prefix}.{status.value}" for status in statuses]


RUN_EVENT_TYPES = _types("run", RunStatus)
STEP_EVENT_TYPES = _types("step", StepStatus)
EVENT_TYPES = RUN_EVENT_TYPES + STEP_EVENT_TYPES


def _one_of(values: list[str]) -> str:
    return "^(" + "|".join(value.replace(".", r"\.") for value in values) + ")$"


class RunTransition(BaseModel):
    """A `run.<status>` event's data: the status, and what that transition tells."""

    model_config = ConfigDict(extra="allow")

    status: RunStatus
    run_number: int | None = Field(default=None, description="On run.queued of a new run.")
    reason: str | None = Field(default=None, description="Why a run was queued again.")
    attempt: int | None = Field(default=None, description="On run.running: the claim's number.")
    error: str | None = Field(default=None, description="On run.failed: why.")
    duration_ms: int | None = Field(default=None, description="On a run's end.")


class StepTransition(BaseModel):
    """A `step.<status>` event's data: the step's state after the transition."""

    model_config = ConfigDict(extra="allow")

    step_id: str
    node_id: str
    status: StepStatus
    status_reason: str | None
    iteration: int | None
    loop_id: str | None
    order_key: str | None = Field(
        default=None,
        description="Where the step sorts among the run's steps (as in its steps listing: "
        "compare as strings). Absent from events recorded before steps had one.",
    )
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None


class RunTransitionEvent(BaseModel):
    """A transition of the run itself."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(description="Increases with each event of the run; the SSE event id.")
    run_id: UUID
    type: Annotated[str, Field(pattern=_one_of(RUN_EVENT_TYPES), examples=["run.completed"])]
    step_id: None = Field(description="Always null for a run's own transition.")
    data: RunTransition
    created_at: datetime


class StepTransitionEvent(BaseModel):
    """A transition of one of the run's steps."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(description="Increases with each event of the run; the SSE event id.")
    run_id: UUID
    type: Annotated[str, Field(pattern=_one_of(STEP_EVENT_TYPES), examples=["step.completed"])]
    step_id: UUID = Field(description="The step record's UUID (its `id`).")
    data: StepTransition
    created_at: datetime


RUN_EVENT = TypeAdapter(RunTransitionEvent | StepTransitionEvent)
"""One event of a run, as the `data` of its Server-Sent Event."""


def sse_item_schema(event_ref: str) -> dict[str, Any]:
    """The OpenAPI `itemSchema` of one Server-Sent Event whose `data` is `event_ref`."""
    return {
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event id."},
            "event": {"type": "string", "enum": EVENT_TYPES, "description": "Its `type`."},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": event_ref},
            },
        },
    }
