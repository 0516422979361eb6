"""The live view of `stepline run`: one status line per running step, on stderr."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from stepline.cli.render import status_text
from stepline.records import FINISHED_STEP_STATUSES, RunRecord, StepRecord, StepStatus


class LiveProgress:
    """A RunObserver that shows what is running now and logs each step as it finishes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._running: dict[str, tuple[StepRecord, float]] = {}
        self._total = 0
        self._finished: set[str] = set()
        self._live = Live(
            console=console, refresh_per_second=8, transient=True, get_renderable=self._render
        )

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def step_changed(self, step: StepRecord) -> None:
        if step.status is StepStatus.pending:
            self._total += 1
            return
        if step.status is StepStatus.running:
            started = self._running.get(step.step_id, (step, time.monotonic()))[1]
            self._running[step.step_id] = (step, started)
            return
        if step.status in FINISHED_STEP_STATUSES and step.step_id not in self._finished:
            self._running.pop(step.step_id, None)
            self._finished.add(step.step_id)
            line = Text.assemble("  ", status_text(step.status), f" {step.step_id}")
            if step.duration_ms is not None:
                line.append(f" ({step.duration_ms} ms)", style="dim")
            if step.error:
                line.append(f"  {step.error}", style="red")
            self.console.print(line)

    def run_changed(self, run: RunRecord) -> None:
        pass

    def _render(self) -> RenderableType:
        now = time.monotonic()
        lines: list[RenderableType] = [
            Spinner(
                "dots",
                text=Text.assemble(
                    (step.step_id, "bold"),
                    f" ({step.node_type}) running {now - started:.1f} s",
                    (f"  retry {step.retry_count}" if step.retry_count else "", "yellow"),
                ),
            )
            for step, started in self._running.values()
        ]
        lines.append(Text(f"{len(self._finished)}/{self._total} steps finished", style="dim"))
        return Group(*lines)
