"""Following a run's events as they commit (the SSE stream of `GET .../runs/{id}/events`).

The events are read again when the store's run bell rings (`stepline.store.bell`), and
at least every `UNHEARD_S` for a run a worker of another process executes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

from stepline.records import FINISHED_RUN_STATUSES
from stepline.service.context import Caller, ServiceContext
from stepline.store.events import MAX_EVENTS, TERMINAL_RUN_EVENTS, RunEvent

UNHEARD_S = 0.5
"""How long a follower trusts the bell before reading the events anyway."""


async def follow_events(
    ctx: ServiceContext, caller: Caller, run_id: UUID, after: int | None
) -> AsyncIterator[list[RunEvent]]:
    """The run's events after event `after` (from the first without it), a batch at a time
    as they commit, up to and with the run's terminal event; an empty batch whenever
    `UNHEARD_S` passes without any (a caller may keep its connection alive then).

    The caller checks first that the run is the caller's (`lookup.run_of`).
    """
    org = caller.organization_id
    with ctx.store.run_bell.listen(run_id) as rung:
        while True:
            rung.clear()
            # Read the status first: if the run had finished by then, its terminal event
            # was committed with it, so the read that follows returns every event left.
            head = await ctx.store.runs.head(org, run_id)
            finished = head is None or head.status in FINISHED_RUN_STATUSES
            sent = False
            while True:
                events = await ctx.store.events.list(
                    run_id, organization_id=org, after_id=after, limit=MAX_EVENTS
                )
                if not events:
                    break
                yield events
                sent = True
                after = events[-1].id
                if any(event.type in TERMINAL_RUN_EVENTS for event in events):
                    return
                if len(events) < MAX_EVENTS:
                    break
            if finished:
                return  # resumed after the terminal event (or the run was deleted)
            if not sent:
                yield []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rung.wait(), UNHEARD_S)
