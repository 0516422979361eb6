"""Waiting for a run to settle (finish, or wait for a person's review), on its events.

The store writes a `run.<status>` event with every transition of a run and rings its
`RunBell` once the event commits: the waiter reads the run's new events when the bell
rings, not in a loop. A run executed by a worker of another process rings no bell here;
for it the events are read again every `UNHEARD_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

from stepline.records import SETTLED_RUN_STATUSES, RunRecord
from stepline.service.context import Caller, ServiceContext
from stepline.service.lookup import run_of
from stepline.store.events import MAX_EVENTS

UNHEARD_S = 1.0
"""How long a waiter trusts the bell before reading the events anyway."""

SETTLED_EVENTS = frozenset(f"run.{status.value}" for status in SETTLED_RUN_STATUSES)


async def wait_for_run(
    ctx: ServiceContext, caller: Caller, run_id: UUID, timeout_s: float
) -> RunRecord:
    """The caller's run once it has finished or waits for a person, or as it is after
    `timeout_s` seconds (NotFound if it is not the caller's, or was deleted meanwhile)."""
    run = await run_of(ctx, caller, run_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    after: int | None = None
    last_type = f"run.{run.status.value}"
    # Listening before the first read: an event committed after it rings the bell.
    with ctx.store.run_bell.listen(run_id) as rung:
        while True:
            rung.clear()
            while True:
                events = await ctx.store.events.list(
                    run_id, organization_id=caller.organization_id, after_id=after
                )
                if events:
                    after = events[-1].id
                    run_types = [e.type for e in events if e.type.startswith("run.")]
                    last_type = run_types[-1] if run_types else last_type
                if len(events) < MAX_EVENTS:
                    break
            remaining = deadline - loop.time()
            if last_type in SETTLED_EVENTS or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rung.wait(), min(remaining, UNHEARD_S))
    return await run_of(ctx, caller, run_id)
