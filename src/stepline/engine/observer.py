"""A hook for watching a run as it happens (the CLI's live view, later the SSE stream)."""

from __future__ import annotations

from typing import Protocol

from stepline.records import RunRecord, StepRecord


class RunObserver(Protocol):
    """Told of every transition after it is durable. Must not block or raise."""

    def step_changed(self, step: StepRecord) -> None: ...

    def run_changed(self, run: RunRecord) -> None: ...


class NullObserver:
    def step_changed(self, step: StepRecord) -> None:
        pass

    def run_changed(self, run: RunRecord) -> None:
        pass
