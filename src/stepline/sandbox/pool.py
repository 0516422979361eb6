"""Runs user code in confined processes, fast: a pool around one warm fork server.

Isolation: see `stepline.sandbox.launch` (how the server is confined) and
`stepline.sandbox.runtime.namespaces` (how each job is). Each job runs in a fresh process,
forked from a server that has already started Python and imported the modules user code
commonly needs, with an address-space limit (`memory_mb`), a CPU-time backstop, a
wall-clock deadline, a process-count limit and its own private /tmp; whatever it started
dies with it, and nothing survives from one job to the next.

Speed: the server keeps children forked, confined and warmed up ahead of need, so a job
costs a few pipe messages and the user's own work instead of a new interpreter (a few ms
from `execute` to its answer on a 2-core VM, against 15-20 ms for a fresh `python -c`).
The engine side never blocks its event loop.

Failures of the user's code come back as a `SandboxOutcome` with `ok=False`; failures of the
sandbox itself raise `SandboxError` (worth a retry) or `SandboxUnavailable` (this machine
cannot give the isolation asked for; the message says what to change).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from types import TracebackType
from typing import Any

from stepline.sandbox.egress import AllowList, AllowListError, EgressProxy
from stepline.sandbox.launch import isolation_problem, process_isolation_warning, zygote_command
from stepline.sandbox.outcome import (
    SandboxError,
    SandboxOutcome,
    SandboxUnavailable,
    decode_outcome,
)
from stepline.sandbox.zygote import Pending, Zygote
from stepline.settings import Settings, get_settings

logger = logging.getLogger("stepline.sandbox")

_ANSWER_GRACE_S = 5.0
"""How long past a job's own deadline the pool waits before it deems the zygote stuck."""


class SandboxPool:
    """Runs code jobs in forked, confined processes; one warm zygote serves all jobs.

    Use one pool per worker process and close it when done (or `async with SandboxPool()`).
    A pool belongs to the event loop that first used it. Jobs may run concurrently.
    """

    def __init__(
        self,
        *,
        memory_mb: int | None = None,
        settings: Settings | None = None,
        warm: bool = True,
    ) -> None:
        if memory_mb is not None and memory_mb <= 0:
            raise ValueError(f"memory_mb must be positive, not {memory_mb}")
        self._memory_mb = memory_mb
        self._warm = warm
        """Start the zygote on entering (else on the first job: a process that may run no
        code, like `stepline run` of a workflow without code steps, spares its start)."""
        self._settings = settings
        self._zygote: Zygote | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._workdir: str | None = None
        self._egress: EgressProxy | None = None
        self._closed = False

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    @property
    def zygote_pid(self) -> int | None:
        """The fork server's process id (bubblewrap's, when isolated), while one runs."""
        zygote = self._zygote
        return zygote.pid if zygote is not None and zygote.alive else None

    async def start(self) -> None:
        """Starts the zygote now rather than on the first job (which otherwise pays ~0.1 s)."""
        await self._running_zygote()

    async def close(self) -> None:
        """Stops the zygote and every job still running; later calls do nothing."""
        self._closed = True
        async with self._lock:
            zygote, self._zygote = self._zygote, None
            if zygote is not None:
                await zygote.close()
            if self._egress is not None:
                await self._egress.close()
                self._egress = None
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    async def __aenter__(self) -> SandboxPool:
        """Starts the zygote; where code cannot be isolated, says so once and goes on (every
        code job is then refused with the same message, the rest of the service runs)."""
        if not self._warm:
            return self
        try:
            await self.start()
        except SandboxUnavailable as exc:
            logger.warning("%s", exc)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def execute(
        self,
        code: str,
        inputs: Any,
        *,
        timeout_s: float,
        memory_mb: int | None = None,
        filename: str = "<code>",
        network: bool = False,
    ) -> SandboxOutcome:
        """Runs `code`'s `main(inputs)` in a fresh child process and says how it went.

        `inputs` must be JSON-serialisable (ValueError otherwise). `network`: the job may
        reach what `STEPLINE_CODE_NETWORK` allows, through the egress proxy. Raises
        SandboxError when the sandbox itself fails, SandboxUnavailable when it cannot be had
        here. Cancelling the awaiting task kills the child.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        settings = self.settings
        if network and not allowed_network(settings):
            raise SandboxUnavailable(
                "this server allows code steps no network (STEPLINE_CODE_NETWORK=none)"
            )
        # The operator's ceilings hold here too, whatever a caller asks for.
        memory = min(
            memory_mb or self._memory_mb or settings.code_memory_mb, settings.code_max_memory_mb
        )
        timeout_s = min(timeout_s, settings.code_max_timeout_s)
        request = {
            "op": "run",
            "code": code,
            "filename": filename,
            "inputs": inputs,
            "memory_mb": memory,
            "timeout_s": timeout_s,
            "network": network,
        }
        started_at = time.perf_counter()
        # A zygote that died before it took the job (e.g. killed while idle, unnoticed yet)
        # ran none of it: one more try on a fresh zygote is safe.
        for attempt in (1, 2):
            zygote = await self._running_zygote()
            job_id = next(self._ids)
            request["id"] = job_id
            try:
                encoded = json.dumps(request).encode()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the code's inputs must be JSON-serialisable: {exc}") from exc
            pending: Pending | None = None
            try:
                pending = await zygote.submit(job_id, encoded)
                header, payload = await self._answer(zygote, job_id, pending, timeout_s)
            except asyncio.CancelledError:
                zygote.kill_job(job_id)
                raise
            except SandboxError:
                taken = pending is not None and pending.started
                if attempt == 1 and not taken and not zygote.alive:
                    continue
                raise
            break
        duration_ms = (time.perf_counter() - started_at) * 1000
        return decode_outcome(header, payload, timeout_s, memory, duration_ms)

    async def _answer(
        self, zygote: Zygote, job_id: int, pending: Pending, timeout_s: float
    ) -> tuple[dict[str, Any], bytes]:
        try:
            async with asyncio.timeout(timeout_s + _ANSWER_GRACE_S):
                return await pending.future
        except TimeoutError:
            # The zygote enforces deadlines itself; silence past one means it is stuck.
            zygote.kill_job(job_id)
            zygote.kill()
            raise SandboxError(
                f"the code sandbox did not answer within {timeout_s + _ANSWER_GRACE_S:g} s; "
                "it was restarted"
            ) from None

    async def _running_zygote(self) -> Zygote:
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        zygote = self._zygote
        if zygote is not None and zygote.alive:
            return zygote
        async with self._lock:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            if self._zygote is not None and self._zygote.alive:
                return self._zygote
            if self._zygote is not None:
                await self._zygote.close()
                self._zygote = None
            settings = self.settings
            problem = isolation_problem(settings)
            if problem is not None:
                raise SandboxUnavailable(problem)
            if self._workdir is None:
                self._workdir = tempfile.mkdtemp(prefix="stepline-sandbox-")
                if os.geteuid() == 0:
                    # `nobody` must reach what is inside: its job directories (process
                    # isolation) or the staged paths bubblewrap binds (namespaces).
                    os.chmod(self._workdir, 0o711)
            egress_dir = (
                await self._start_egress(settings)
                if settings.code_isolation == "namespaces"
                else None
            )
            command = zygote_command(settings, self._workdir, egress_dir)
            if not command.isolated:
                logger.warning(process_isolation_warning())
                protect_this_process()
            self._zygote = await Zygote.spawn(command)
            return self._zygote

    async def _start_egress(self, settings: Settings) -> str | None:
        """Starts the egress proxy if the operator allows any network; its directory."""
        allow = allowed_network(settings)
        if not allow:
            return None
        assert self._workdir is not None
        directory = os.path.join(self._workdir, "egress")
        os.makedirs(directory, 0o711, exist_ok=True)
        if self._egress is None:
            self._egress = EgressProxy(allow, directory)
            await self._egress.start()
        return directory


def allowed_network(settings: Settings) -> AllowList:
    """The operator's allow-list; a malformed one is refused as the isolation it breaks."""
    try:
        return AllowList.parse(settings.code_network)
    except AllowListError as exc:
        raise SandboxUnavailable(str(exc)) from exc


_PR_SET_DUMPABLE = 4


def protect_this_process() -> bool:
    """Makes this process not dumpable, so that code steps cannot read its secrets.

    Needed with process isolation only (in namespaces a job cannot even name this process).
    There, code steps may run as this process's user (always when it is not root). Such a
    process can read the /proc/<pid>/environ and /proc/<pid>/mem of any dumpable process of
    that user, this one included. Not dumpable, this process's /proc entries belong to root
    and need CAP_SYS_PTRACE. The price: no core dumps, and attaching a debugger or profiler
    (gdb, py-spy) needs root. Linux only; elsewhere, or if refused, it does nothing and
    says False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
