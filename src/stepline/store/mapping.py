"""Rows to records and back: the only place that knows how a model becomes a row.

Nested models (ErrorDetails, TokenUsage, CostBreakdown, Attempt, IterationContext) go
into JSON columns as `model_dump(mode="json")` and come back through `model_validate`,
which also turns the stored enum strings back into enums. A step's rows, which only the
`Prepared` statements of the hot path take, carry them serialized already (`JSONText`,
the same JSON), at the moment the write is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from types import UnionType
from typing import Any, Union, get_args, get_origin

import pydantic_core
from pydantic import BaseModel
from sqlalchemy import RowMapping

from stepline.records import RunRecord, StepRecord, WorkflowRecord, WorkflowVersion
from stepline.store.tables import runs, steps
from stepline.store.types import JSONText

STEP_COLUMNS: tuple[str, ...] = tuple(c.name for c in steps.c)
RUN_COLUMNS: tuple[str, ...] = tuple(c.name for c in runs.c)

# What update_step writes: everything but the step's identity and birth.
STEP_IDENTITY = frozenset(
    {
        "id",
        "run_id",
        "workflow_id",
        "workflow_version",
        "organization_id",
        "user_id",
        "node_id",
        "step_id",
        "node_type",
        "node_label",
        "seq",
        "order_key",
        "loop_id",
        "iteration",
        "iteration_context",
        "created_at",
    }
)
STEP_MUTABLE_COLUMNS: tuple[str, ...] = tuple(c for c in STEP_COLUMNS if c not in STEP_IDENTITY)

_WORKFLOW_FIELDS = tuple(WorkflowRecord.model_fields)
_VERSION_FIELDS = tuple(WorkflowVersion.model_fields)


def _nested(model: type[BaseModel]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields of `model` holding a model, and those holding a list of models."""
    single: list[str] = []
    lists: list[str] = []
    for name, field in model.model_fields.items():
        kinds = _kinds(field.annotation)
        if "list" in kinds:
            lists.append(name)
        elif "model" in kinds:
            single.append(name)
    return tuple(single), tuple(lists)


def _kinds(annotation: Any) -> list[str]:
    if get_origin(annotation) is list:
        return ["list"] if any(_kinds(arg) == ["model"] for arg in get_args(annotation)) else []
    if get_origin(annotation) in (Union, UnionType):
        return [kind for arg in get_args(annotation) for kind in _kinds(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ["model"]
    return []


_STEP_MODELS, _STEP_MODEL_LISTS = _nested(StepRecord)
_RUN_MODELS, _RUN_MODEL_LISTS = _nested(RunRecord)


def _dump_nested(row: dict[str, Any], models: tuple[str, ...], lists: tuple[str, ...]) -> None:
    """Replace nested models in `row` by their JSON-mode dumps (present keys only)."""
    for name in models:
        value = row.get(name)
        if value is not None:
            row[name] = value.model_dump(mode="json")
    for name in lists:
        value = row.get(name)
        if value:
            row[name] = [item.model_dump(mode="json") for item in value]


def _serialize_nested(row: dict[str, Any], names: tuple[str, ...]) -> None:
    """Replace nested models (or non-empty lists of them) in `row` by their JSON text."""
    for name in names:
        value = row[name]
        if value is not None and value != []:  # None stays NULL, [] an empty list
            row[name] = JSONText(pydantic_core.to_json(value).decode())


_STEP_NESTED = _STEP_MODELS + _STEP_MODEL_LISTS
_STEP_NESTED_MUTABLE = tuple(name for name in _STEP_NESTED if name in STEP_MUTABLE_COLUMNS)
_step_values = itemgetter(*STEP_COLUMNS)
_step_mutable_values = itemgetter(*STEP_MUTABLE_COLUMNS)


def step_to_row(step: StepRecord) -> dict[str, Any]:
    """The parameters of `steps_sql.INSERT` (a `Prepared` statement)."""
    # A model's field values live in its __dict__ (pydantic v2).
    row = dict(zip(STEP_COLUMNS, _step_values(step.__dict__), strict=True))
    _serialize_nested(row, _STEP_NESTED)
    return row


def step_update_params(step: StepRecord) -> dict[str, Any]:
    """The parameters of `steps_sql.UPDATE`: the step's id and its mutable columns."""
    params = dict(zip(STEP_MUTABLE_COLUMNS, _step_mutable_values(step.__dict__), strict=True))
    _serialize_nested(params, _STEP_NESTED_MUTABLE)
    params["step_uuid"] = step.id
    return params


def row_to_step(row: RowMapping) -> StepRecord:
    return StepRecord.model_validate(dict(row))


def run_to_row(run: RunRecord) -> dict[str, Any]:
    row = {name: getattr(run, name) for name in RUN_COLUMNS}
    _dump_nested(row, _RUN_MODELS, _RUN_MODEL_LISTS)
    return row


def row_to_run(row: RowMapping, step_counts: dict[str, int] | None = None) -> RunRecord:
    data = dict(row)
    data["step_counts"] = step_counts
    return RunRecord.model_validate(data)


def workflow_to_row(workflow: WorkflowRecord) -> dict[str, Any]:
    row = workflow.model_dump()
    row["deleted_at"] = None
    return row


def row_to_workflow(row: RowMapping) -> WorkflowRecord:
    return WorkflowRecord.model_validate({name: row[name] for name in _WORKFLOW_FIELDS})


def version_to_row(version: WorkflowVersion, organization_id: Any) -> dict[str, Any]:
    row = version.model_dump()
    row["organization_id"] = organization_id
    return row


def row_to_version(row: Mapping[Any, Any]) -> WorkflowVersion:
    return WorkflowVersion.model_validate({name: row[name] for name in _VERSION_FIELDS})
