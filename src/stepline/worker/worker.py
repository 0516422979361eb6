"""The process side of execution: claims runs with a lease, keeps it alive, drives the engine.

A lease that is not renewed expires (`STEPLINE_LEASE_S`); the next worker on the database
then claims the orphaned run and resumes it from its checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from uuid import UUID

from stepline.engine import Engine
from stepline.records import RunRecord

log = logging.getLogger(__name__)


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Exception):
    """Another worker took over the run: this one must stop touching it."""


@dataclass
class Worker:
    """Claims runs from the store and executes them, one lease per run."""

    engine: Engine
    lease_s: float
    worker_id: str = field(default_factory=make_worker_id)

    async def claim_and_execute(self, run_id: UUID | None = None) -> RunRecord | None:
        """Claim one run (that one, or the oldest claimable) and drive it to its end."""
        run = await self.engine.store.claim_run(self.worker_id, self.lease_s, run_id=run_id)
        if run is None:
            return None
        return await self.execute_claimed(run)

    async def execute_claimed(self, run: RunRecord) -> RunRecord:
        """Drive a run this worker holds, renewing its lease until the run ends."""
        execution = asyncio.create_task(self.engine.execute(run, worker_id=self.worker_id))
        heartbeat = asyncio.create_task(self._heartbeat(run.id, execution))
        try:
            return await execution
        except asyncio.CancelledError:
            if heartbeat.done() and not heartbeat.cancelled() and heartbeat.result():
                raise LeaseLost(f"run {run.id} was taken over by another worker") from None
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def drain(self) -> list[RunRecord]:
        """Run every queued or orphaned run until none is left (`stepline worker --once`)."""
        finished: list[RunRecord] = []
        while (run := await self.claim_and_execute()) is not None:
            finished.append(run)
        return finished

    async def serve(self, stop: asyncio.Event, *, poll_s: float = 0.5) -> None:
        """Keep claiming runs until `stop` is set."""
        while not stop.is_set():
            try:
                run = await self.claim_and_execute()
            except LeaseLost as exc:
                log.warning("%s", exc)
                continue
            if run is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)

    async def _heartbeat(self, run_id: UUID, execution: asyncio.Task[RunRecord]) -> bool:
        """Renew the lease at a third of its length; cancel the run if the lease is lost."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if not await self.engine.store.renew_lease(run_id, self.worker_id, self.lease_s):
                log.warning("lost the lease on run %s; stopping it here", run_id)
                execution.cancel()
                return True
