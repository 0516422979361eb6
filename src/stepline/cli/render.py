"""How runs and steps look in a terminal: tables for people, JSON for programs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stepline.records import RunRecord, StepRecord

STATUS_STYLES = {
    "completed": "green",
    "running": "cyan",
    "pending": "dim",
    "queued": "dim",
    "skipped": "yellow",
    "error": "red",
    "failed": "red",
    "cancelled": "magenta",
    "waiting_for_human": "blue",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:.2f} s"


def steps_table(steps: Iterable[StepRecord]) -> Table:
    """The steps as the store lists them: in execution order, iterations after their loop."""
    table = Table(title="Steps", title_justify="left", expand=False)
    table.add_column("node")
    table.add_column("type")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("retries", justify="right")
    table.add_column("error / note", overflow="fold")
    for step in steps:
        note = step.error or step.status_reason or ""
        table.add_row(
            step.step_id,
            step.node_type,
            status_text(step.status),
            format_duration(step.duration_ms),
            str(step.retry_count) if step.retry_count else "",
            Text(note, style="red" if step.error else "dim"),
        )
    return table


RUN_COLUMN_GAP = 3
"""Between two columns: a space of padding each side of the (blank) divider."""


def runs_table(runs: Iterable[RunRecord], workflow_names: Mapping[UUID, str], width: int) -> Table:
    """Run ids are printed whole, never cut (they are what one copies next), with the
    status and the workflow's name; the created time, duration and error follow as far as
    the terminal's `width` allows."""
    rows = []
    for run in runs:
        name = workflow_names.get(run.workflow_id) or f"{str(run.workflow_id)[:8]}…"
        rows.append(
            {
                "run id": str(run.id),
                "status": str(run.status),
                "workflow": f"{name} v{run.workflow_version}",
                "created": run.created_at.strftime("%Y-%m-%d %H:%M"),
                "duration": format_duration(run.duration_ms),
                "error": run.error or "",
            }
        )

    def widest(column: str) -> int:
        return max([len(column), *(len(row[column]) for row in rows)])

    shown = ["run id", "status", "workflow"]
    workflow_min = min(widest("workflow"), 16)
    used = widest("run id") + widest("status") + workflow_min + 2 * RUN_COLUMN_GAP
    for optional in ("created", "duration"):
        if used + RUN_COLUMN_GAP + widest(optional) <= width:
            shown.append(optional)
            used += RUN_COLUMN_GAP + widest(optional)
    workflow_width = min(widest("workflow"), workflow_min + max(0, width - used))
    used += workflow_width - workflow_min
    error_room = width - used - RUN_COLUMN_GAP
    if any(row["error"] for row in rows) and error_room >= 12:
        shown.append("error")

    table = Table(title="Runs", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    table.pad_edge = False
    for column in shown:
        if column == "error":
            table.add_column(column, overflow="fold", max_width=error_room)
        elif column == "run id":  # whole even when nothing else fits
            table.add_column(column, no_wrap=True, min_width=widest(column))
        else:
            table.add_column(
                column, no_wrap=True, justify="right" if column == "duration" else "left"
            )
    for row in rows:
        cells: list[str | Text] = []
        for column in shown:
            text = row[column]
            if column == "workflow" and len(text) > workflow_width:
                text = text[: workflow_width - 1] + "…"
            cells.append(status_text(text) if column == "status" else text)
        table.add_row(*cells)
    return table


def print_run_summary(console: Console, run: RunRecord) -> None:
    console.print(
        Text.assemble(
            "Run ",
            (str(run.id), "bold"),
            " ",
            status_text(run.status),
            f"  ({format_duration(run.duration_ms)})",
        )
    )
    if run.error:
        console.print(Text(f"Error: {run.error}", style="red"))
    if run.step_counts:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(run.step_counts.items()))
        console.print(f"Steps: {counts}")


def run_document(run: RunRecord, steps: Iterable[StepRecord] | None = None) -> dict[str, Any]:
    """The run as one JSON document, with its full step records when given."""
    doc = run.model_dump(mode="json")
    if steps is not None:
        doc["steps"] = [step.model_dump(mode="json") for step in steps]
    return doc
