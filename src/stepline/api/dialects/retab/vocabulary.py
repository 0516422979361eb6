"""Retab's words for stepline's: node kinds, step statuses and run statuses, in both of
Retab's generations (seed 004's steps and runs, and today's SDK's steps and runs).

Every table covers every built-in kind and status; a kind no table names (a plugin's) is
Retab's generic `functions` / `function` block. docs/dialects/retab.md lists the same.
"""

from __future__ import annotations

from typing import Final, Literal

from stepline.records import RunStatus, StepStatus

SeedNodeType = Literal[
    "start",
    "start_json",
    "end",
    "note",
    "parse",
    "edit",
    "extract",
    "split",
    "classifier",
    "conditional",
    "hil",
    "api_call",
    "functions",
    "reshape",
    "while_loop",
    "for_each",
    "merge_pdf",
    "merge_dicts",
    "while_loop_sentinel_start",
    "while_loop_sentinel_end",
    "for_each_sentinel_start",
    "for_each_sentinel_end",
]

BlockType = Literal[
    "start_document",
    "start_json",
    "note",
    "parse",
    "edit",
    "extract",
    "split",
    "classifier",
    "conditional",
    "api_call",
    "function",
    "while_loop",
    "for_each",
    "merge_dicts",
    "while_loop_sentinel_start",
    "while_loop_sentinel_end",
    "for_each_sentinel_start",
    "for_each_sentinel_end",
]

# stepline kind -> (seed 004's node_type, today's block_type).
_KINDS: Final[dict[str, tuple[SeedNodeType, BlockType]]] = {
    # The start node hands the run's JSON inputs on: Retab's JSON start.
    "start": ("start_json", "start_json"),
    # The end node computes the run's output from a template; today's Retab has no end block.
    "end": ("end", "function"),
    "note": ("note", "note"),
    "code": ("functions", "function"),
    "conditional": ("conditional", "conditional"),
    "reshape": ("reshape", "function"),
    "merge_dicts": ("merge_dicts", "merge_dicts"),
    "api_call": ("api_call", "api_call"),
    # Slack, email and webhooks: calls to another service's API.
    "integration": ("api_call", "api_call"),
    "for_each": ("for_each", "for_each"),
    "while_loop": ("while_loop", "while_loop"),
    # Today's Retab puts a review on a block's lifecycle (awaiting_review), not on a kind.
    "hil": ("hil", "function"),
    "sub_workflow": ("functions", "function"),
    # A free language-model call (its model, tokens and cost are on the step).
    "model": ("functions", "function"),
    "knowledge_retrieval": ("functions", "function"),
    "classifier": ("classifier", "classifier"),
    "extract": ("extract", "extract"),
    "parse": ("parse", "parse"),
    "split": ("split", "split"),
    "merge_pdf": ("merge_pdf", "edit"),
    "edit": ("edit", "edit"),
}
_OTHER_KIND: Final[tuple[SeedNodeType, BlockType]] = ("functions", "function")


def seed_node_type(kind: str) -> SeedNodeType:
    """Seed 004's `node_type` of a stepline node kind."""
    return _KINDS.get(kind, _OTHER_KIND)[0]


def block_type(kind: str) -> BlockType:
    """Today's `block_type` of a stepline node kind."""
    return _KINDS.get(kind, _OTHER_KIND)[1]


SeedRunStatus = Literal[
    "pending", "running", "completed", "error", "waiting_for_human", "cancelled"
]
RunLifecycleStatus = Literal[
    "pending", "running", "awaiting_review", "completed", "error", "cancelled"
]

# A seed-era Retab run is `running` from the moment it is accepted (its start answers with
# one), so a queued run is `running` there; today's lifecycle has `pending` for it.
_RUN_STATUSES: Final[dict[RunStatus, tuple[SeedRunStatus, RunLifecycleStatus]]] = {
    RunStatus.queued: ("running", "pending"),
    RunStatus.running: ("running", "running"),
    RunStatus.waiting_for_human: ("waiting_for_human", "awaiting_review"),
    RunStatus.completed: ("completed", "completed"),
    RunStatus.failed: ("error", "error"),
    RunStatus.cancelled: ("cancelled", "cancelled"),
}


def seed_run_status(status: RunStatus) -> SeedRunStatus:
    return _RUN_STATUSES[status][0]


def run_lifecycle_status(status: RunStatus) -> RunLifecycleStatus:
    return _RUN_STATUSES[status][1]


StepLifecycleStatus = Literal[
    "pending",
    "queued",
    "running",
    "completed",
    "awaiting_review",
    "error",
    "skipped",
    "cancelled",
]


def step_lifecycle_status(status: StepStatus) -> StepLifecycleStatus:
    """Today's lifecycle status: seed 004's step status, but `waiting_for_human` is
    `awaiting_review` (seed 004's step statuses are stepline's own, unchanged)."""
    if status is StepStatus.waiting_for_human:
        return "awaiting_review"
    value: StepLifecycleStatus = status.value  # type: ignore[assignment]
    return value


def step_status(status: StepLifecycleStatus) -> StepStatus:
    """stepline's step status of today's lifecycle status."""
    if status == "awaiting_review":
        return StepStatus.waiting_for_human
    return StepStatus(status)


KNOWN_KINDS: Final = frozenset(_KINDS)
