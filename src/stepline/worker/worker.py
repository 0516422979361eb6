"""The process side of execution: claims runs with a lease, keeps it alive, drives the engine.

A lease that is not renewed expires (`STEPLINE_LEASE_S`); the next worker on the database
then claims the orphaned run and resumes it from its checkpoints.

While it runs a run, the worker also watches for a cancel request: it reads the run's
`cancel_requested_at` every `CANCEL_POLL_S` (a cancel from any process), and `cancel()`
stops a run at once (the API calls it when the run is in its own process).

No run stops the worker: an error that escapes a run's execution (the engine fails the
runs it cannot execute itself; this is the last resort) fails that run, and the worker
claims the next. Only an outage of the store propagates, leaving the lease to expire.
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

from stepline.documents.text import describe_error
from stepline.engine import Engine
from stepline.engine.failures import run_failure
from stepline.errors import Conflict
from stepline.records import ErrorStage, RunRecord, RunStatus
from stepline.store.errors import LeaseLostError, is_outage

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.5
"""How often a running run's cancel request is looked for in the database."""


def make_worker_id(name: str | None = None) -> str:
    """`name` (default: the host's), the process id and a random part: unique per process."""
    return f"{name or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Conflict):
    """Another worker took over the run: this one must stop touching it."""


@dataclass
class Worker:
    """Claims runs from the store and executes them, one lease per run."""

    engine: Engine
    lease_s: float
    worker_id: str = field(default_factory=make_worker_id)
    cancel_poll_s: float = CANCEL_POLL_S
    _cancels: dict[UUID, asyncio.Event] = field(default_factory=dict, init=False, repr=False)

    def cancel(self, run_id: UUID) -> bool:
        """Stop the run now if this worker is running it; False if it is not running here.

        The cancel must already be requested in the store (`store.runs.request_cancel`): this
        only spares the wait for the next poll.
        """
        event = self._cancels.get(run_id)
        if event is None:
            return False
        event.set()
        return True

    def running(self) -> list[UUID]:
        """The runs this worker is driving now."""
        return list(self._cancels)

    async def release(self, run_ids: list[UUID]) -> None:
        """Give up runs this worker held and stopped: queued again with no lease, for
        another worker to resume from their checkpoints (a step cut short runs again)."""
        for run_id in run_ids:
            try:
                await self.engine.store.runs.finish(run_id, self.worker_id, status=RunStatus.queued)
            except LeaseLostError:
                continue  # finished, or taken over, meanwhile: not ours to release
            except Exception:
                log.exception("could not release run %s; its lease will expire", run_id)
                continue
            log.info("released run %s", run_id)

    async def claim_and_execute(self, run_id: UUID | None = None) -> RunRecord | None:
        """Claim one run (that one, or the oldest claimable) and drive it to its end."""
        run = await self.engine.store.runs.claim(self.worker_id, self.lease_s, run_id=run_id)
        if run is None:
            return None
        return await self.execute_claimed(run)

    async def execute_claimed(self, run: RunRecord) -> RunRecord:
        """Drive a run this worker holds, renewing its lease until the run ends."""
        cancel = self._cancels[run.id] = asyncio.Event()
        execution = asyncio.create_task(
            self.engine.execute(run, worker_id=self.worker_id, cancel=cancel)
        )
        heartbeat = asyncio.create_task(self._heartbeat(run.id, execution, cancel))
        try:
            return await execution
        except asyncio.CancelledError:
            if heartbeat.done() and not heartbeat.cancelled() and heartbeat.result():
                raise LeaseLost(f"run {run.id} was taken over by another worker") from None
            raise
        except Exception as exc:
            if is_outage(exc) or isinstance(exc, LeaseLostError):
                raise
            return await self._fail(run, exc)
        finally:
            self._cancels.pop(run.id, None)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _fail(self, run: RunRecord, exc: Exception) -> RunRecord:
        """Fail a run whose execution raised: it would raise again on every claim."""
        log.exception("run %s could not be executed; failing it", run.id)
        reason = f"the run could not be executed: {describe_error(exc)}"
        finished = await self.engine.store.runs.finish(
            run.id,
            self.worker_id,
            status=RunStatus.failed,
            error=reason,
            error_details=run_failure(reason, ErrorStage.execution, exc),
        )
        self.engine.observer.run_changed(finished)
        return finished

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
            except Exception:
                # A store outage must not end the worker: log it and try again after a pause.
                log.exception("worker error; retrying in %.1fs", poll_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)
                continue
            if run is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)

    async def _heartbeat(
        self, run_id: UUID, execution: asyncio.Task[RunRecord], cancel: asyncio.Event
    ) -> bool:
        """Renew the lease at a third of its length; cancel the run if the lease is lost.

        In between, look for a cancel request and pass it on through `cancel`.
        """
        loop = asyncio.get_running_loop()
        renew_every = self.lease_s / 3
        renew_at = loop.time() + renew_every
        while True:
            await asyncio.sleep(max(min(self.cancel_poll_s, renew_at - loop.time()), 0))
            if not cancel.is_set() and await self.engine.store.runs.cancel_requested_at(run_id):
                log.info("run %s: cancel requested; stopping it", run_id)
                cancel.set()
            if loop.time() < renew_at:
                continue
            renew_at = loop.time() + renew_every
            if not await self.engine.store.runs.renew_lease(run_id, self.worker_id, self.lease_s):
                log.warning("lost the lease on run %s; stopping it here", run_id)
                execution.cancel()
                return True
