"""Pure functions from stepline's canonical records to Onepin's shapes (seed 002).

Nothing here reads a database or a request: each function takes records (and, where a
value depends on the workflow's graph, its definition) and gives the JSON-ready dict a
client of Onepin expects. docs/dialects/onepin.md documents every mapping below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from stepline.records import (
    FINISHED_STEP_STATUSES,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    WorkflowRecord,
)

RUN_STATUS: dict[RunStatus, str] = {
    RunStatus.queued: "pending",
    RunStatus.running: "running",
    RunStatus.waiting_for_human: "paused",
    RunStatus.completed: "completed",
    RunStatus.failed: "failed",
    RunStatus.cancelled: "cancelled",
}
"""stepline's run status -> Onepin's (Onepin's `draft` has no stepline run: a run exists
only once it is queued)."""

RUN_STATUS_FILTER: dict[str, RunStatus] = {onepin: own for own, onepin in RUN_STATUS.items()}
"""Onepin's run status, as a `status` filter takes it -> stepline's."""

ONEPIN_RUN_STATUSES: tuple[str, ...] = tuple(RUN_STATUS.values())

STEP_STATUS: dict[StepStatus, str] = {
    StepStatus.pending: "pending",
    StepStatus.queued: "pending",
    StepStatus.running: "running",
    StepStatus.completed: "completed",
    StepStatus.skipped: "skipped",
    StepStatus.error: "failed",
    StepStatus.waiting_for_human: "paused",
    StepStatus.cancelled: "cancelled",
}
"""stepline's step status -> Onepin's (its run vocabulary, plus `skipped`)."""

DEFAULT_PORT = "default"
"""The port of a node's default output (edges without a `handle`)."""

ATTEMPT_NAMESPACE = UUID("6f6e6570-696e-5374-8570-617474656d70")
"""Namespace of the attempt ids: uuid5(namespace, f"{step id}/{attempt number}")."""


def timestamp(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` suffix, to the millisecond."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


# --- runs --------------------------------------------------------------------------------------


def _finished_steps(counts: Mapping[str, int]) -> int:
    finished = {status.value for status in FINISHED_STEP_STATUSES}
    return sum(count for status, count in counts.items() if status in finished)


def run_out(
    run: RunRecord, *, total_nodes: int | None = None, finished_nodes: int | None = None
) -> dict[str, Any]:
    """Onepin's run. `total_steps` and `finished_steps` count step records (node
    executions); a retried step is one record here and one entry per attempt in steps."""
    counts = run.step_counts or {}
    return {
        "id": str(run.id),
        "workflow_id": str(run.workflow_id),
        "status": RUN_STATUS[run.status],
        "run_number": run.run_number,
        "total_nodes": total_nodes,
        "total_steps": sum(counts.values()),
        "finished_steps": _finished_steps(counts),
        "finished_nodes": finished_nodes,
        "started_at": timestamp(run.started_at),
        "completed_at": timestamp(run.completed_at),
        "created_at": timestamp(run.created_at),
        "updated_at": timestamp(run.updated_at),
        "error": run.error,
        "token_cost": run.total_tokens or 0,
        "credits": None,
    }


def run_status_out(run: RunRecord) -> dict[str, Any]:
    """The light run: who it is, where it stands, and when."""
    return {
        "id": str(run.id),
        "workflow_id": str(run.workflow_id),
        "status": RUN_STATUS[run.status],
        "started_at": timestamp(run.started_at),
        "completed_at": timestamp(run.completed_at),
        "updated_at": timestamp(run.updated_at),
        "error": run.error,
    }


def run_status_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """stepline's runs per status -> Onepin's, every Onepin status present."""
    out = dict.fromkeys(ONEPIN_RUN_STATUSES, 0)
    for status, count in counts.items():
        out[RUN_STATUS[RunStatus(status)]] += count
    return out


def summary_out(
    counts: Mapping[str, int],
    total: int,
    pass_rate: float | None,
    average_duration_seconds: float | None,
    *,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    return {
        "from": timestamp(since),
        "to": timestamp(until),
        "total_runs": total,
        **run_status_counts(counts),
        "pass_rate": pass_rate,
        "average_duration_seconds": average_duration_seconds,
    }


# --- steps -------------------------------------------------------------------------------------


def attempt_id(step_id: UUID, number: int) -> UUID:
    """The stable id of a step's attempt `number` (1-based)."""
    return uuid5(ATTEMPT_NAMESPACE, f"{step_id}/{number}")


def iteration_of(step: StepRecord) -> int:
    """Onepin counts iterations from 1: a step of loop iteration i (0-based in stepline)
    is iteration i + 1; a step outside any loop runs once, in iteration 1."""
    return step.iteration + 1 if step.iteration is not None else 1


def outbound_handles(definition: Mapping[str, Any]) -> dict[str, set[str | None]]:
    """Each node's outgoing edges' handles (None: the default output), loop bodies'
    included."""
    found: dict[str, set[str | None]] = {}

    def walk(level: Mapping[str, Any]) -> None:
        for edge in level.get("edges") or []:
            if isinstance(edge, dict) and edge.get("from") is not None:
                handle = edge.get("handle")
                found.setdefault(str(edge["from"]), set()).add(
                    None if handle is None else str(handle)
                )
        for node in level.get("nodes") or []:
            if isinstance(node, dict) and isinstance(node.get("body"), dict):
                walk(node["body"])

    walk(definition)
    return found


def active_ports(step: StepRecord, handles: Mapping[str, set[str | None]]) -> list[str] | None:
    """The output ports a completed step activated: the branch, category or review handle
    it took, and its default output unless a rejected review took only `rejected` (or
    the node has no edge from its default output beside a taken handle). None until the
    step completes."""
    if step.status is not StepStatus.completed:
        return None
    metadata = step.step_metadata or {}
    taken = metadata.get("active_handle")
    if taken is None:
        return [DEFAULT_PORT]
    ports = [str(taken)]
    wired = handles.get(step.node_id, set())
    if not metadata.get("exclusive_handle") and None in wired:
        ports.append(DEFAULT_PORT)
    return ports


def node_labels(definition: Mapping[str, Any]) -> dict[str, str]:
    """Each node's label (its id when it has none), loop bodies' included."""
    labels: dict[str, str] = {}
    for node in definition.get("nodes") or []:
        if not isinstance(node, dict) or node.get("id") is None:
            continue
        labels[str(node["id"])] = str(node.get("label") or node["id"])
        if isinstance(node.get("body"), dict):
            labels.update(node_labels(node["body"]))
    return labels


def step_entries(
    step: StepRecord,
    handles: Mapping[str, set[str | None]],
    *,
    include_result: bool,
) -> list[dict[str, Any]]:
    """One entry per execution attempt of the step, in order. Earlier attempts carry their
    own status, times and error; the last carries the step's status and its result (while
    a step waits to be retried, its last attempt is an ended one too). A step not tried
    yet (pending, skipped) is one entry."""
    has_result = step.outputs is not None
    base = {
        "node_id": step.node_id,
        "node_type": step.node_type,
        "node_display_name": step.node_label,
        "iteration": iteration_of(step),
    }
    entries: list[dict[str, Any]] = []
    last = step.attempts[-1] if step.attempts else None
    # Between a failed attempt and its retry the step stays running: the attempt ended.
    between = (
        last is not None and last.status is StepStatus.error and step.status is StepStatus.running
    )
    for attempt in step.attempts if between else step.attempts[:-1]:
        entries.append(
            {
                "id": str(attempt_id(step.id, attempt.number)),
                **base,
                "status": STEP_STATUS[attempt.status],
                "started_at": timestamp(attempt.started_at),
                "completed_at": timestamp(attempt.completed_at),
                "result": None,
                "has_result": False,
                "active_ports": None,
                "error": attempt.error,
            }
        )
    if between:
        return entries
    ended = step.completed_at or (last.completed_at if last else None)
    entries.append(
        {
            "id": str(attempt_id(step.id, last.number if last else 1)),
            **base,
            "status": STEP_STATUS[step.status],
            "started_at": timestamp(last.started_at if last else step.started_at),
            "completed_at": timestamp(ended if step.status in FINISHED_STEP_STATUSES else None),
            "result": _result(step.outputs) if include_result and has_result else None,
            "has_result": has_result,
            "active_ports": active_ports(step, handles),
            "error": step.error,
        }
    )
    return entries


def _result(outputs: Any) -> dict[str, Any]:
    """Onepin's `result` is an object: a node's output that is not one is under `output`."""
    return outputs if isinstance(outputs, dict) else {"output": outputs}


def steps_out(
    steps: Iterable[StepRecord], definition: Mapping[str, Any], *, include_result: bool
) -> list[dict[str, Any]]:
    handles = outbound_handles(definition)
    return [
        entry
        for step in steps
        for entry in step_entries(step, handles, include_result=include_result)
    ]


def node_state(step: StepRecord) -> dict[str, Any]:
    """A step as the run overview lists it (its last attempt's view, whole duration)."""
    return {
        "node_id": step.node_id,
        "node_type": step.node_type,
        "node_display_name": step.node_label,
        "status": STEP_STATUS[step.status],
        "iteration": iteration_of(step),
        "started_at": timestamp(step.started_at),
        "completed_at": timestamp(
            step.completed_at if step.status in FINISHED_STEP_STATUSES else None
        ),
        "duration_ms": step.duration_ms,
        "error": step.error,
    }


def output_rows(output: Any) -> list[dict[str, Any]]:
    """A run's output as rows: a list's items (an item that is not an object is under
    `value`), one row for any other value, none before there is an output."""
    if output is None:
        return []
    items = output if isinstance(output, list) else [output]
    return [item if isinstance(item, dict) else {"value": item} for item in items]


# --- workflows ---------------------------------------------------------------------------------


def workflow_out(
    workflow: WorkflowRecord,
    definition: dict[str, Any],
    *,
    runs_count: int,
    counts: Mapping[str, int],
    last_run: RunRecord | None,
) -> dict[str, Any]:
    """Onepin's workflow. `user_id` is the organization's id: stepline's workflows belong
    to an organization, not to a user."""
    return {
        "id": str(workflow.id),
        "user_id": str(workflow.organization_id),
        "name": workflow.name,
        "description": workflow.description or None,
        "definition": definition,
        "created_at": timestamp(workflow.created_at),
        "updated_at": timestamp(workflow.updated_at),
        "runs_count": runs_count,
        "last_run_at": timestamp(last_run.created_at) if last_run else None,
        "last_run_status": RUN_STATUS[last_run.status] if last_run else None,
        "run_status_counts": run_status_counts(counts),
    }
