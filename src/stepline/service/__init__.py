"""The verbs every edge shares: the API's routes and the CLI call these, not the store.

Each verb takes a `ServiceContext` (opened once per process by
`stepline.runtime.open_runtime`), a `Caller` (an organization, optionally a workspace)
and plain values, and raises the kinds of `stepline.errors` (NotFound, Conflict,
InvalidRequest...), which each edge maps once (the API to HTTP in `stepline.api.errors`).

| module | verbs |
| --- | --- |
| `workflows` | validate a definition, create and save workflows |
| `runs` | start a run (inputs, idempotency, version pin, wake the worker), cancel it |
| `control` | review a step, retry a run, replay it from a node |
| `waiting` | wait for a run to settle, on its events |
| `steps` | read a run's steps and its end nodes' values |
| `files` | upload, read, list and delete files; check a run's file references |
| `lookup` | the caller's workflow, run or step, else NotFound |
"""

from __future__ import annotations

from stepline.service.context import Caller, ServiceContext
from stepline.service.control import PROPOSED, Review, replay_run, retry_run, review_step
from stepline.service.inputs import InvalidRunInputs
from stepline.service.lookup import live_workflow, run_head, run_of, step_of
from stepline.service.runs import (
    RunWindow,
    StartedRun,
    Submission,
    cancel_run,
    checked_idempotency_key,
    page_runs,
    start_run,
    submit_run,
    summarize_runs,
    window_runs,
)
from stepline.service.steps import (
    StepsQuery,
    get_step,
    node_has_steps,
    run_steps,
    run_values,
    step_documents,
    stream_step_documents,
)
from stepline.service.waiting import wait_for_run
from stepline.service.workflows import (
    DefinitionInvalid,
    create_workflow,
    definition_of,
    pinned_version,
    save_workflow,
    validate_definition,
)

__all__ = [
    "PROPOSED",
    "Caller",
    "DefinitionInvalid",
    "InvalidRunInputs",
    "Review",
    "RunWindow",
    "ServiceContext",
    "StartedRun",
    "StepsQuery",
    "Submission",
    "cancel_run",
    "checked_idempotency_key",
    "create_workflow",
    "definition_of",
    "get_step",
    "live_workflow",
    "node_has_steps",
    "page_runs",
    "pinned_version",
    "replay_run",
    "retry_run",
    "review_step",
    "run_head",
    "run_of",
    "run_steps",
    "run_values",
    "save_workflow",
    "start_run",
    "step_documents",
    "step_of",
    "stream_step_documents",
    "submit_run",
    "summarize_runs",
    "validate_definition",
    "wait_for_run",
    "window_runs",
]
