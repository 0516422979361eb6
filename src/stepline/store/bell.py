"""The run bell: wakes whoever waits in this process for news of a run, without polling.

The writes of a run's events (`events.insert_run_event`, `steps.step_write`) mark the
write with the run's id; once the write commits, the store's writer hands the marks to
`RunBell.ring` on the event loop. A waiter listens before it reads the run's events, so no
event committed after its read can be missed. The run events stay the truth: the bell only
says when to read them again. A run executed by a worker in another process rings nothing
here; a waiter reads again after its fallback interval then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID


class RunBell:
    def __init__(self) -> None:
        self._listeners: dict[UUID, set[asyncio.Event]] = {}

    def ring(self, keys: Iterable[Any]) -> None:
        """Wake the listeners of each run in `keys` (other keys are ignored)."""
        for key in keys:
            for event in self._listeners.get(key, ()):
                event.set()

    @contextmanager
    def listen(self, run_id: UUID) -> Iterator[asyncio.Event]:
        """An event set whenever a run event of `run_id` commits (clear it before waiting)."""
        event = asyncio.Event()
        listeners = self._listeners.setdefault(run_id, set())
        listeners.add(event)
        try:
            yield event
        finally:
            listeners.discard(event)
            if not listeners:
                self._listeners.pop(run_id, None)
