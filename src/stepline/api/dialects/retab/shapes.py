"""Pure functions from stepline's canonical records to Retab's shapes: seed 004's step and
run, and today's step, run and step list (shared/seeds/SHAPES.md, "Retab")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stepline.api.dialects.retab.handles import (
    as_object,
    file_ref,
    seed_handle_inputs,
    seed_handle_outputs,
    today_handle_inputs,
    today_handle_outputs,
)
from stepline.api.dialects.retab.vocabulary import (
    block_type,
    run_lifecycle_status,
    seed_node_type,
    seed_run_status,
    step_lifecycle_status,
)
from stepline.records import RunRecord, StepRecord, StepStatus

_SKIPPED = "its branch was not taken, or an upstream step did not complete"
_CANCELLED = "the run was cancelled"


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}


# --- seed 004 ----------------------------------------------------------------------------------


def containers(step: StepRecord) -> list[dict[str, Any]]:
    """The step's loops, outermost first, as Retab's containers (stepline records no
    per-container parallelism: `is_parallel` is false)."""
    frames = step.iteration_context.frames if step.iteration_context else []
    return [
        {"container_id": frame.container_id, "iteration": frame.iteration, "is_parallel": False}
        for frame in frames
    ]


def error_details(step: StepRecord) -> dict[str, Any] | None:
    """Retab's ErrorDetails of a failed step."""
    if step.error_details is None and step.error is None:
        return None
    details = step.error_details
    return {
        "message": (details.message if details else None) or step.error,
        "stack_trace": details.traceback if details else None,
        "block_id": step.node_id,
        "block_name": step.node_label,
        "error_code": (details.error_code or details.type) if details else None,
        "context": details.context if details else None,
    }


def seed_step(step: StepRecord) -> dict[str, Any]:
    """Seed 004's step: the fields its documentation lists, nulls left out as its example
    shows them."""
    cost = step.cost.model_dump(exclude_none=True) if step.cost else None
    iteration_context = {"containers": containers(step)} if step.iteration_context else None
    return _without_nulls(
        {
            "run_id": str(step.run_id),
            "organization_id": str(step.organization_id),
            "node_id": step.node_id,
            "step_id": step.step_id,
            "node_type": seed_node_type(step.node_type),
            "node_label": step.node_label,
            "status": step.status.value,
            "started_at": iso(step.started_at),
            "completed_at": iso(step.completed_at),
            "duration_ms": step.duration_ms,
            "error": step.error,
            "error_stage": step.error_stage.value if step.error_stage else None,
            "error_category": step.error_category.value if step.error_category else None,
            "error_details": error_details(step),
            "model": step.model,
            "cost": cost,
            "tokens": step.tokens.model_dump() if step.tokens else None,
            "trace_spans": step.trace_spans,
            "output": None if step.outputs is None else as_object(step.outputs),
            "handle_outputs": seed_handle_outputs(step) or None,
            "handle_inputs": seed_handle_inputs(step) or None,
            "input_document": step.input_document,
            "output_document": step.output_document,
            "split_documents": step.split_documents,
            "requires_human_review": step.requires_human_review,
            "human_reviewed_at": iso(step.human_reviewed_at),
            "human_review_approved": step.human_review_approved,
            "retry_count": step.retry_count,
            "loop_id": step.loop_id,
            "iteration": step.iteration,
            "iteration_context": iteration_context,
            "created_at": iso(step.created_at),
            "updated_at": iso(step.updated_at),
        }
    )


def step_summary(step: StepRecord) -> dict[str, Any]:
    """A step as the seed-era run lists it (without its inputs and outputs)."""
    return {
        "node_id": step.node_id,
        "step_id": step.step_id,
        "node_type": seed_node_type(step.node_type),
        "node_label": step.node_label,
        "status": step.status.value,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "duration_ms": step.duration_ms,
        "error": step.error,
    }


def waiting_for_node_ids(steps: Iterable[StepRecord]) -> list[str]:
    """The nodes whose steps wait for a person, once each, in execution order."""
    found: dict[str, None] = {}
    for step in steps:
        if step.status is StepStatus.waiting_for_human:
            found.setdefault(step.node_id)
    return list(found)


# --- today's SDK -------------------------------------------------------------------------------


def lifecycle(step: StepRecord) -> dict[str, Any]:
    """Today's step lifecycle, discriminated by its status."""
    status = step_lifecycle_status(step.status)
    if status == "error":
        return {
            "status": "error",
            "message": step.error or "the step failed",
            "stage": step.error_stage.value if step.error_stage else None,
            "category": step.error_category.value if step.error_category else None,
            "details": error_details(step),
        }
    if status == "skipped":
        return {"status": "skipped", "reason": step.status_reason or _SKIPPED}
    if status == "cancelled":
        return {"status": "cancelled", "reason": step.status_reason or _CANCELLED}
    return {"status": status}


def today_step(step: StepRecord) -> dict[str, Any]:
    """Today's step: every key of the SDK's model, null where it does not apply."""
    return {
        "block_id": step.node_id,
        "step_id": step.step_id,
        "block_type": block_type(step.node_type),
        "block_label": step.node_label,
        "run_id": str(step.run_id),
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "created_at": iso(step.created_at),
        "model": step.model,
        "retry_count": step.retry_count,
        "handle_inputs": today_handle_inputs(step),
        "handle_outputs": today_handle_outputs(step),
        "loop_containers": containers(step),
        # stepline keeps its results on the step itself, not in separate collections.
        "artifact": None,
        "lifecycle": lifecycle(step),
    }


def step_list(steps: Sequence[StepRecord], after: str | None, before: str | None) -> dict[str, Any]:
    """Today's page of steps."""
    return {
        "data": [today_step(step) for step in steps],
        "list_metadata": {"before": before, "after": after},
    }


# --- the run: both generations in one object ----------------------------------------------------


_TRIGGERS = {"api": "api", "cli": "manual", "replay": "restart"}
_RETAB_TRIGGERS = {"manual", "api", "schedule", "webhook", "email", "custom", "restart"}


def trigger_type(trigger: str) -> str:
    """Retab's trigger type of what started the run: `stepline run` (the CLI) is `manual`,
    a replay `restart`; one Retab has no name for (a sub-workflow's parent) `custom`."""
    if trigger in _RETAB_TRIGGERS:
        return trigger
    return _TRIGGERS.get(trigger, "custom")


def run_lifecycle(run: RunRecord, steps: Sequence[StepRecord]) -> dict[str, Any]:
    """Today's run lifecycle, discriminated by its status."""
    status = run_lifecycle_status(run.status)
    if status == "awaiting_review":
        return {"status": status, "waiting_for_block_ids": waiting_for_node_ids(steps)}
    if status == "cancelled":
        return {"status": status, "reason": run.error}
    if status != "error":
        return {"status": status}
    failing = next((step for step in steps if step.status is StepStatus.error), None)
    if failing is None:
        return {"status": status, "message": run.error or "the run failed"}
    return {
        "status": status,
        "message": run.error or failing.error or "the run failed",
        "stage": failing.error_stage.value if failing.error_stage else None,
        "category": failing.error_category.value if failing.error_category else None,
        "details": error_details(failing),
        "failing_step_id": failing.step_id,
    }


def run_view(
    run: RunRecord,
    *,
    workflow_name: str,
    workflow_version_id: str,
    steps: Sequence[StepRecord],
    documents: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The run as both generations of Retab's clients read it: seed 004's fields and
    today's (`trigger`, `lifecycle`, `timing`, `inputs`...); each ignores the other's.

    `documents` are the run's top-level file inputs, each `{file_id, filename, mime_type}`.
    """
    json_data = {key: value for key, value in run.inputs.items() if key not in documents}
    return {
        "id": str(run.id),
        "workflow_id": str(run.workflow_id),
        "workflow_name": workflow_name,
        "organization_id": str(run.organization_id),
        "status": seed_run_status(run.status),
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "duration_ms": run.duration_ms,
        "steps": [step_summary(step) for step in steps],
        "final_outputs": None if run.output is None else as_object(run.output),
        "error": run.error,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "waiting_for_node_ids": waiting_for_node_ids(steps),
        "workflow_version_id": workflow_version_id,
        "trigger": {"type": trigger_type(run.trigger)},
        "lifecycle": run_lifecycle(run, steps),
        "timing": {
            "created_at": iso(run.created_at),
            "started_at": iso(run.started_at),
            "completed_at": iso(run.completed_at),
        },
        "inputs": {
            "documents": {name: file_ref(document) for name, document in documents.items()},
            "json_data": json_data,
        },
        "metadata": {},
    }
