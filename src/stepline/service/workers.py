"""The fleet as an organization's admin sees it: the live workers (the server's, shared by
every organization) and, of the runs each holds, only the caller's."""

from __future__ import annotations

from stepline.service.context import Caller, ServiceContext
from stepline.store.workers import LiveWorker


async def list_workers(ctx: ServiceContext, caller: Caller, *, lease_s: float) -> list[LiveWorker]:
    """Workers that beat within `lease_s` (a worker silent longer has lost its leases, so
    it is not counted as live), oldest first."""
    return await ctx.store.workers.live(caller.organization_id, stale_after_s=lease_s)
