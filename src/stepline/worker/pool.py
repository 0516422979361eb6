"""Several runs at once in one process: `concurrency` claim loops sharing one worker.

Each loop claims a run, drives it to its end, and claims again; an idle loop sleeps
until `wake()` (a run was just queued in this process) or the poll interval passes (a run
was queued by another process, or a lease expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from stepline.worker.worker import LeaseLost, Worker

log = logging.getLogger(__name__)


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
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """A run is waiting: idle loops claim now instead of at their next poll."""
        self._wakeup.set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the claim loops until `stop` is set; runs in flight are then cancelled.

        A cancelled run keeps its lease until it expires, and the next worker resumes it
        from its checkpoints, as after a crash.
        """
        loops = [asyncio.create_task(self._loop(stop)) for _ in range(self.concurrency)]
        loops.append(asyncio.create_task(self._sweep(stop)))
        try:
            await stop.wait()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
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
                # A store outage must not kill the loop: log it and try again after a pause.
                log.exception("worker loop error; retrying in %.1fs", self.poll_s)
                await asyncio.sleep(self.poll_s)
                continue
            if run is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_s)

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
