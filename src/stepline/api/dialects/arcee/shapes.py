"""Arcee Orchestra's run and step shapes, as pure functions of stepline's canonical records
(seed 000: the steps of a run; the execution history and workflow runs pages: run items).

Arcee shows a model node's value to later nodes, and in a run's outputs, as its text; the
canonical record keeps the whole completion (with `content`), so the views map it here.
Times are UTC with microseconds and a `Z`; `elapsed_time` is whole seconds, truncated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from stepline.api.dialects.arcee.graph import arcee_graph
from stepline.records import RunRecord, RunStatus, StepRecord, StepStatus, WorkflowRecord

MODEL_KIND = "model"
"""The kind whose output is a chat completion: Arcee's model node."""
INTEGRATION_KIND = "integration"
WORKSPACE_TYPE = "local"
"""An integration's credentials are this server's own (its secrets vault), not a hosted
tool workspace's."""

RUN_STATUSES: Mapping[RunStatus, str] = {
    RunStatus.queued: "pending",
    RunStatus.running: "running",
    RunStatus.waiting_for_human: "running",
    RunStatus.completed: "completed",
    RunStatus.failed: "failed",
    RunStatus.cancelled: "cancelled",
}
STEP_STATUSES: Mapping[StepStatus, str] = {
    StepStatus.pending: "pending",
    StepStatus.queued: "pending",
    StepStatus.running: "running",
    StepStatus.waiting_for_human: "running",
    StepStatus.completed: "completed",
    StepStatus.skipped: "skipped",
    StepStatus.error: "failed",
    StepStatus.cancelled: "cancelled",
}


# --- times ---------------------------------------------------------------------------------


def timestamp(moment: datetime | None) -> str | None:
    """2025-03-13T02:41:15.144470Z: UTC, always six digits of microseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def elapsed_seconds(start: datetime | None, end: datetime | None, now: datetime) -> int:
    """Whole seconds from start to end (to `now` while unfinished), truncated; 0 unstarted."""
    if start is None:
        return 0
    return max(0, int(((end or now) - start).total_seconds()))


# --- values as Arcee shows them ------------------------------------------------------------


def completion_text(completion: Any) -> Any:
    """A model node's value as Arcee passes it on: the completion's text (the value itself
    when it is not a completion)."""
    if not isinstance(completion, Mapping):
        return completion
    if "content" in completion:
        return completion["content"]
    choices = completion.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        if isinstance(message, Mapping):
            return message.get("content")
    return completion


def passed_on(kind: str | None, value: Any) -> Any:
    """A node's output as Arcee shows it to later nodes and in a run's outputs: a model
    node's as its text, an integration's with Arcee's result keys."""
    if kind == MODEL_KIND:
        return completion_text(value)
    if kind == INTEGRATION_KIND:
        return integration_result(value)
    return value


def node_values(values: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    """Run inputs and node outputs by name (`kinds`: each node's kind by id), each node's
    as `passed_on` shows it."""
    return {key: passed_on(kinds.get(key), value) for key, value in values.items()}


COMPLETION_KEYS = (
    "id",
    "object",
    "created",
    "model",
    "choices",
    "usage",
    "prompt_logprobs",
    "confidence_info",
)
"""A model node's output as Arcee documents it, in its order (vLLM's completion object)."""


def model_completion(outputs: Any) -> Any:
    """A model step's output as Arcee's model node gives it: the OpenAI `chat.completion`
    object with vLLM's fields (null where the provider gave none) and `confidence_info`,
    without stepline's own `content` (the first choice's text, already in `choices`)."""
    if not isinstance(outputs, Mapping):
        return outputs
    shown = {key: outputs.get(key) for key in COMPLETION_KEYS}
    shown |= {key: value for key, value in outputs.items() if key != "content"}
    choices = shown.get("choices")
    if isinstance(choices, list):
        shown["choices"] = [_choice(choice) for choice in choices]
    usage = shown.get("usage")
    if isinstance(usage, Mapping):
        shown["usage"] = {**usage, "prompt_tokens_details": usage.get("prompt_tokens_details")}
    return shown


def _choice(choice: Any) -> Any:
    if not isinstance(choice, Mapping):
        return choice
    shown = dict(choice)
    message = shown.get("message")
    if isinstance(message, Mapping):
        shown["message"] = {
            "role": message.get("role"),
            "reasoning_content": None,
            "content": message.get("content"),
            **message,
            "tool_calls": message.get("tool_calls") or [],
        }
    shown.setdefault("logprobs", None)
    shown.setdefault("stop_reason", None)
    return shown


def integration_result(value: Any) -> Any:
    """An integration's `{"result": {...}}` with Arcee's misspelled `successfull` beside
    `successful` (its clients read either)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("result"), Mapping):
        return value
    result = value["result"]
    if "successful" not in result:
        return value
    shown = {
        "data": result.get("data"),
        "error": result.get("error"),
        "successfull": result["successful"],
        **result,
    }
    return {**value, "result": shown}


# --- steps ---------------------------------------------------------------------------------


def steps_view(run: RunRecord, steps: Sequence[StepRecord], now: datetime) -> list[dict[str, Any]]:
    """The run's steps as Arcee's `GET .../runs/{run_id}/steps` lists them (execution order)."""
    kinds = {step.node_id: step.node_type for step in steps}
    seen = _seen_before(run, steps)
    return [step_item(run, step, seen.get(step.id, {}), kinds, now) for step in steps]


def _seen_before(run: RunRecord, steps: Sequence[StepRecord]) -> dict[UUID, dict[str, Any]]:
    """For each step whose kind does not record its `input_data`, what it had when it
    started: the run's inputs and the outputs of the steps completed by then (a later
    iteration's over an earlier one's). One sweep in time order, not a scan per step."""
    wanted = sorted(
        (step for step in steps if _derives_context(step)),
        key=lambda step: (step.started_at is not None, step.started_at or run.created_at),
    )
    finished = sorted(
        (
            (s.completed_at, s.node_id, s.outputs)
            for s in steps
            if s.status is StepStatus.completed and s.completed_at is not None
        ),
        key=lambda item: item[0],  # by time only: outputs need not be comparable
    )
    values: dict[str, Any] = dict(run.inputs)
    seen: dict[UUID, dict[str, Any]] = {}
    done = 0
    for step in wanted:
        start = step.started_at
        while start is not None and done < len(finished) and finished[done][0] <= start:
            _, node_id, outputs = finished[done]
            values[node_id] = outputs
            done += 1
        seen[step.id] = dict(values)
    return seen


def _derives_context(step: StepRecord) -> bool:
    """Whether the view must work out the step's `input_data`: it resolved its inputs, but
    its kind does not record what it saw (`NodeKind.records_run_context`: the language-model
    kinds but split, and integration)."""
    if step.inputs is None:
        return False
    return not (isinstance(step.inputs, Mapping) and "input_data" in step.inputs)


def step_item(
    run: RunRecord,
    step: StepRecord,
    earlier: Mapping[str, Any],
    kinds: Mapping[str, str],
    now: datetime,
) -> dict[str, Any]:
    """One step; `earlier` is the run's inputs and the outputs of the steps completed before
    it started (the `input_data` of a kind that does not record its own), `kinds` each
    node's kind by id."""
    outputs, metadata = step.outputs, step.step_metadata
    if step.node_type == MODEL_KIND:
        outputs = model_completion(outputs)
    elif step.node_type == INTEGRATION_KIND:
        outputs, metadata = integration_result(outputs), integration_result(metadata)
    user = step.user_id or run.user_id
    return {
        "id": str(step.id),
        "user_id": None if user is None else str(user),
        "organization_id": str(step.organization_id),
        "node_id": step.node_id,
        "status": STEP_STATUSES[step.status],
        "start_time": timestamp(step.started_at),
        "end_time": timestamp(step.completed_at),
        "elapsed_time": elapsed_seconds(step.started_at, step.completed_at, now),
        "error": step.error,
        "outputs": outputs if outputs is not None else {},
        "inputs": step_inputs(run, step, earlier, kinds),
        "step_metadata": metadata,
        "tokens": step.tokens.total if step.tokens is not None else 0,
    }


def step_inputs(
    run: RunRecord, step: StepRecord, earlier: Mapping[str, Any], kinds: Mapping[str, str]
) -> dict[str, Any]:
    """The node's resolved config, then `run_id` and `input_data` (for every kind, as
    Arcee shows them); empty before the step resolved its inputs."""
    if step.inputs is None:
        return {}
    recorded = dict(step.inputs) if isinstance(step.inputs, Mapping) else {"input": step.inputs}
    data = recorded.pop("input_data", None)
    recorded.pop("run_id", None)
    if not isinstance(data, Mapping):
        data = earlier
    if step.node_type == INTEGRATION_KIND:
        recorded = _with_entity(recorded, run)
    return {**recorded, "run_id": str(run.id), "input_data": node_values(data, kinds)}


def _with_entity(recorded: dict[str, Any], run: RunRecord) -> dict[str, Any]:
    """Arcee's `entity_id` (whose connected account acted: here the workspace, else the
    organization, whose secrets the action used) and `workspace_type`, after `action`."""
    entity = {
        "entity_id": str(run.workspace_id or run.organization_id),
        "workspace_type": WORKSPACE_TYPE,
    }
    ordered: dict[str, Any] = {}
    for key, value in recorded.items():
        ordered[key] = value
        if key == "action":
            ordered |= entity
    return ordered | {k: v for k, v in entity.items() if k not in ordered}


# --- runs ----------------------------------------------------------------------------------


def run_item(run: RunRecord, steps: Iterable[StepRecord], now: datetime) -> dict[str, Any]:
    """One run as the execution history and workflow runs APIs list it: `outputs` is the
    run's output, `all_outputs` the inputs and every completed node's output by node id."""
    kinds: dict[str, str] = {}
    values: dict[str, Any] = dict(run.inputs)
    output, output_kind = run.output, None
    for step in steps:
        kinds[step.node_id] = step.node_type
        if step.status is StepStatus.completed:
            values[step.node_id] = step.outputs
            if output is not None and output_kind is None and step.outputs == output:
                output_kind = step.node_type  # the run ends on this node: shown as it shows
    return {
        "id": str(run.id),
        "status": RUN_STATUSES[run.status],
        "start_time": timestamp(run.started_at),
        "end_time": timestamp(run.completed_at),
        "elapsed_time": elapsed_seconds(run.started_at, run.completed_at, now),
        "error": run.error,
        "outputs": passed_on(output_kind, output),
        "all_outputs": node_values(values, kinds),
        "inputs": dict(run.inputs),
    }


# --- workflows -----------------------------------------------------------------------------


def listed_time(moment: datetime) -> str:
    """2025-03-12 00:59:55.465508+00:00: how Arcee's workflow list writes its times."""
    return moment.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


def workflow_item(workflow: WorkflowRecord, definition: Mapping[str, Any]) -> dict[str, Any]:
    """One workflow as Arcee's `GET /workflows` lists it, with its latest definition as
    Arcee's `graph`. The definition is stored in the database, not a file: no
    `file_metadata`; a workflow records no user: `user_id`, `created_by` and `updated_by`
    are null."""
    return {
        "workflow_id": str(workflow.id),
        "user_id": None,
        "organization_id": str(workflow.organization_id),
        "created_at": listed_time(workflow.created_at),
        "created_by": None,
        "description": workflow.description,
        "file_metadata": None,
        "graph": arcee_graph(definition),
        "name": workflow.name,
        "status": "active",
        "updated_at": listed_time(workflow.updated_at),
        "updated_by": None,
        "version": str(workflow.latest_version),
        "public": False,
    }
