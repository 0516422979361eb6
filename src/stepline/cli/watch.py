"""Following a run on a server to its end, and what a finished run prints and exits with.

Exit codes of a watched run (and of `stepline run`): 0 completed, 3 waiting for a
person's review, 1 otherwise.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from stepline.cli.console import err, out, print_json
from stepline.cli.failures import EXIT_FAILED, EXIT_WAITING

if TYPE_CHECKING:
    from rich.console import Group

    from stepline.records import RunRecord
    from stepline.sdk import Client, Event, Run, StepChange


class RunView:
    """What `--watch` shows: one row per step, in the order the steps appeared."""

    def __init__(self, run: Run) -> None:
        self.run_id = run.id
        self.status: str = run.status
        self.steps: dict[str, StepChange] = {}
        self.started = time.monotonic()

    def apply(self, event: Event) -> None:
        change = event.step_change
        if change is not None:
            self.steps[change.step_id] = change
        elif event.run_status is not None:
            self.status = event.run_status

    def render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from stepline.cli.render import format_duration, status_text
        from stepline.records import FINISHED_STEP_STATUSES

        table = Table(title="Steps", title_justify="left")
        table.add_column("step")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("error / note", overflow="fold")
        now = datetime.now(UTC)
        for step in self.steps.values():
            note = step.error or step.status_reason or ""
            table.add_row(
                step.step_id,
                status_text(step.status),
                format_duration(_elapsed_ms(step, now)),
                Text(note, style="red" if step.error else "dim"),
            )
        finished = sum(1 for s in self.steps.values() if s.status in FINISHED_STEP_STATUSES)
        elapsed = format_duration(int((time.monotonic() - self.started) * 1000))
        header = Text.assemble(
            "Run ",
            (str(self.run_id), "bold"),
            " ",
            status_text(self.status),
            f"  {finished}/{len(self.steps)} steps finished, {elapsed}",
        )
        return Group(header, table)


def _elapsed_ms(step: StepChange, now: datetime) -> int | None:
    if step.started_at is None:
        return None
    end = step.completed_at or now
    return max(0, int((end - step.started_at).total_seconds() * 1000))


def follow_run(client: Client, run: Run, *, live: bool) -> Run:
    """Read the run's events until it ends or waits for a review (a live table on stderr
    when `live`)."""
    from rich.live import Live

    from stepline.records import RunStatus

    view = RunView(run)
    screen = Live(view.render(), console=err(), refresh_per_second=8, transient=True)
    with screen if live else nullcontext(), client.runs.events(run.workflow_id, run.id) as events:
        for event in events:
            view.apply(event)
            if live:
                screen.update(view.render())
            # An earlier pause may be replayed from the stream's start: stop only if the
            # run still waits now.
            if event.type == "run.waiting_for_human":
                current = client.runs.get(run.workflow_id, run.id)
                if current.status is RunStatus.waiting_for_human:
                    return current
    return client.runs.get(run.workflow_id, run.id)


def show_finished(run: RunRecord, steps: list[Any], *, as_json: bool) -> None:
    """A finished run: one JSON document, or its steps, summary and output."""
    from stepline.cli.render import print_run_summary, run_document, steps_table
    from stepline.records import RunStatus

    if as_json:
        print_json(run_document(run, steps))
        return
    out().print(steps_table(steps))
    print_run_summary(out(), run)
    if run.status is RunStatus.completed:
        out().print("Output:")
        print_json(run.output)


def exit_for(run: RunRecord, waiting_hint: str) -> None:
    """A finished run's exit: 0 completed, 3 waiting for a review (saying how to decide),
    else 1."""
    from stepline.records import RunStatus

    if run.status is RunStatus.waiting_for_human:
        err().print(waiting_hint, markup=False, soft_wrap=True)
        raise click.exceptions.Exit(EXIT_WAITING)
    if run.status is not RunStatus.completed:
        raise click.exceptions.Exit(EXIT_FAILED)


def remote_waiting_hint(run: RunRecord) -> str:
    return (
        f"The run waits for a review: `stepline reviews list`, then `stepline reviews "
        f"approve {run.id}` (or reject); the server resumes it once decided."
    )
