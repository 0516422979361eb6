"""Several runs at once in one process: `concurrency` claim loops sharing one worker.

Each loop claims a run, drives it to its end, and claims again; an idle loop sleeps
until `wake()` (a run was just queued in this process) or the poll interval passes (a run
was queued by another process, or a lease expired). A store outage backs off, doubling
the pause up to `MAX_BACKOFF_S`, and carries on when the database is back.

Stopping drains: no new claims; the runs in flight get `grace_s` to finish; what is left
is stopped and released (queued again, its lease cleared, not failed), so that another
worker resumes it from its checkpoints at once instead of after the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from stepline.store.workers import WorkerInfo
from stepline.worker.worker import LeaseLost, Worker

log = logging.getLogger(__name__)

BEAT_S = 5.0
"""The longest pause between a worker's heartbeats in the fleet's registry."""
MAX_BACKOFF_S = 10.0
"""The longest pause between claims while the store is unreachable."""


class WorkerPool:
    def __init__(
        self, worker: Worker, *, concurrency: int, poll_s: float = 0.5, sweep_s: float = 5.0
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.worker = worker
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.sweep_s = sweep_s
        """How often the children of cancelled runs that a cancel could not lock are swept."""
        self.beat_s = min(BEAT_S, worker.lease_s / 3)
        """How often the worker tells the registry it is alive (`GET /v1/workers`)."""
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """A run is waiting: idle loops claim now instead of at their next poll."""
        self._wakeup.set()

    async def serve(self, stop: asyncio.Event, *, grace_s: float = 0.0) -> None:
        """Run the claim loops until `stop` is set, then drain: runs in flight get
        `grace_s` seconds to finish; the rest are stopped and released."""
        loops = [asyncio.create_task(self._loop(stop)) for _ in range(self.concurrency)]
        sweep = asyncio.create_task(self._sweep(stop))
        beat = asyncio.create_task(self._beat(stop))
        try:
            await stop.wait()
            self._wakeup.set()  # idle loops see the stop now
            if grace_s > 0:
                await asyncio.wait(loops, timeout=grace_s)
        finally:
            held = self.worker.running()
            for task in [*loops, sweep, beat]:
                task.cancel()
            await asyncio.gather(*loops, sweep, beat, return_exceptions=True)
            await self.worker.release(held)
            with contextlib.suppress(Exception):  # else it drops out when its beat is stale
                await self.worker.engine.store.workers.remove(self.worker.worker_id)

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = self.poll_s
        while not stop.is_set():
            # Cleared before the claim, so a wake() during the claim is not lost.
            self._wakeup.clear()
            try:
                run = await self.worker.claim_and_execute()
            except LeaseLost as exc:
                log.warning("%s", exc)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store outage must not kill the loop: log it and try again after a pause
                # that grows while the database stays away.
                log.exception("worker loop error; retrying in %.1fs", backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = self.poll_s
            if run is None and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_s)

    def info(self) -> WorkerInfo:
        """This worker as the fleet's registry lists it."""
        worker_id = self.worker.worker_id
        return WorkerInfo(
            id=worker_id,
            name=worker_id.split(":", 1)[0],
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
        )

    async def _beat(self, stop: asyncio.Event) -> None:
        """Register in the fleet's registry, then beat every `beat_s` while serving."""
        store = self.worker.engine.store
        info = self.info()
        registered = False
        while not stop.is_set():
            try:
                if registered:
                    await store.workers.beat(info)
                else:
                    await store.workers.register(info)
                    registered = True
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not reach the worker registry; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.beat_s)

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Now and then, cancel the child runs a cancel of their parent could not lock."""
        store = self.worker.engine.store
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.sweep_s)
            if stop.is_set():
                return
            try:
                swept = await store.runs.cancel_children_of_cancelled()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping the children of cancelled runs failed; trying again")
                continue
            if swept:
                log.info("cancelled %d child run(s) of cancelled runs", swept)
