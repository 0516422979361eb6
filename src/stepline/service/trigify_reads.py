"""A run with everything Trigify's execution detail shows: its steps in execution order
and the table columns (`column_config`) of the workflow version it ran."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stepline.records import RunRecord, StepRecord
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import run_of
from stepline.service.steps import run_steps
from stepline.service.workflows import pinned_definition
from stepline.spec.models import ColumnSpec
from stepline.spec.reporting import salvage


@dataclass(frozen=True, slots=True)
class RunTrace:
    run: RunRecord
    steps: list[StepRecord]
    columns: list[ColumnSpec] | None
    """The pinned version's column_config; None when it has none."""


async def run_trace(
    ctx: ServiceContext, caller: Caller, workflow_id: UUID, run_id: UUID
) -> RunTrace:
    """The caller's run of this workflow, its steps and its version's columns."""
    run = await run_of(ctx, caller, run_id, workflow_id)
    steps = await run_steps(ctx, caller, run_id, workflow_id)
    return RunTrace(run, steps, columns_of(await pinned_definition(ctx, run)))


def columns_of(definition: dict[str, Any]) -> list[ColumnSpec] | None:
    """The definition's column_config (checked when it was saved: any column that no longer
    parses is left out rather than failing the read)."""
    raw = definition.get("column_config")
    if raw is None:
        return None
    return [column for _, column in salvage(raw, ColumnSpec)]
