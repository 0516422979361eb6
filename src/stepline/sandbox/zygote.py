"""The engine's handle on one fork server: start it, send it jobs, read its events.

The server (see `runtime.server`) answers each job with a `done` event; this side matches
answers to the jobs awaiting them and, when the server dies, fails every job in flight
with a `SandboxError`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

from stepline.sandbox.launch import ZygoteCommand
from stepline.sandbox.outcome import SandboxError, SandboxUnavailable
from stepline.sandbox.runtime.protocol import FRAME

logger = logging.getLogger("stepline.sandbox")

_START_TIMEOUT_S = 30.0
_CLOSE_TIMEOUT_S = 2.0
_SETUP_TOOLS = ("bwrap:", "unshare:", "setpriv:", "mount:")
"""What the tools that build the sandbox prefix their complaints with: the machine refuses
the isolation (no user namespaces, no CAP_SYS_ADMIN for root's staging...)."""
_KEPT_STDERR_LINES = 20
"""What the server said last on stderr, quoted when it fails to start."""


@dataclass
class Pending:
    """A job sent to a zygote and not yet answered."""

    future: asyncio.Future[tuple[dict[str, Any], bytes]]
    started: bool = False


@dataclass
class Zygote:
    """One fork-server process and the jobs in flight on it."""

    process: asyncio.subprocess.Process
    ready: asyncio.Future[int]
    """Resolves with the zygote's pid once it has imported what jobs need."""
    pending: dict[int, Pending] = field(default_factory=dict)
    alive: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    command: ZygoteCommand | None = None
    last_stderr: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_KEPT_STDERR_LINES)
    )

    @classmethod
    async def spawn(cls, command: ZygoteCommand) -> Zygote:
        try:
            process = await asyncio.create_subprocess_exec(
                *command.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=command.cwd,
                env=command.env,
                # Its own session: a signal meant for the server's group does not reach it.
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start the code sandbox: {exc}") from exc
        zygote = cls(process, asyncio.get_running_loop().create_future(), command=command)
        zygote.tasks = [
            asyncio.create_task(zygote._read_events()),
            asyncio.create_task(zygote._log_stderr()),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(zygote.ready), _START_TIMEOUT_S)
        except BaseException:
            zygote.ready.cancel()
            await zygote.close()
            raise
        return zygote

    @property
    def pid(self) -> int:
        return self.process.pid

    async def submit(self, job_id: int, request: bytes) -> Pending:
        """Sends an encoded job; its future resolves with the `done` event's header and payload."""
        if not self.alive:
            raise SandboxError("the code sandbox is not running")
        pending = Pending(asyncio.get_running_loop().create_future())
        self.pending[job_id] = pending
        try:
            self._write(request)
            assert self.process.stdin is not None
            await self.process.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.pending.pop(job_id, None)
            self.kill()  # a broken pipe means the zygote is gone or going
            raise SandboxError(f"the code sandbox stopped taking jobs: {exc}") from exc
        return pending

    def kill_job(self, job_id: int) -> None:
        """Asks the zygote to kill a job's processes now; its answer is then ignored."""
        pending = self.pending.pop(job_id, None)
        if pending is not None:
            pending.future.cancel()
        if self.alive:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._write(json.dumps({"op": "kill", "id": job_id}).encode())

    async def close(self) -> None:
        """Stops the zygote (it kills its children on end of input) and waits for it."""
        self.alive = False
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), _CLOSE_TIMEOUT_S)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def kill(self) -> None:
        """Kills the zygote at once; its children die with it (parent-death signal)."""
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def _write(self, message: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(FRAME.pack(len(message)) + message)

    async def _read_events(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                (size,) = FRAME.unpack(await stdout.readexactly(FRAME.size))
                header = json.loads(await stdout.readexactly(size))
                payload_size = sum(header.get("sizes", ()))
                payload = await stdout.readexactly(payload_size) if payload_size else b""
                self._dispatch(header, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the zygote is gone: said below
        except Exception:
            logger.exception("the code sandbox sent an unreadable event; stopping it")
            self.kill()
        finally:
            self.alive = False
            reason = await self._exit_reason()
            if not self.ready.done() and len(self.tasks) > 1:
                # What it said on its way out explains why: read it all first.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.tasks[1]), _CLOSE_TIMEOUT_S)
            error = SandboxError(f"the code sandbox process stopped ({reason}) during the job")
            if not self.ready.done():
                self.ready.set_exception(self._start_failure(reason))
            for pending in self.pending.values():
                if not pending.future.done():
                    pending.future.set_exception(error)
            self.pending.clear()

    def _dispatch(self, header: dict[str, Any], payload: bytes) -> None:
        event = header.get("event")
        if event == "ready":
            if not self.ready.done():
                self.ready.set_result(int(header["pid"]))
            return
        pending = self.pending.get(header.get("id", -1))
        if pending is None:
            return  # a job given up on (cancelled): its answer is of no use
        if event == "started":
            pending.started = True
        elif event == "done":
            del self.pending[header["id"]]
            if not pending.future.done():
                pending.future.set_result((header, payload))

    async def _exit_reason(self) -> str:
        try:
            code = await asyncio.wait_for(self.process.wait(), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            self.kill()
            return "it stopped answering and was killed"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    async def _log_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        while chunk := await stderr.read(1 << 16):
            for line in chunk.decode(errors="replace").splitlines():
                self.last_stderr.append(line)
                logger.warning("code sandbox: %s", line)

    def _start_failure(self, reason: str) -> Exception:
        """Why the server never got ready: the isolation is not to be had here (bubblewrap
        refused), which no retry mends, or a passing failure."""
        said = "; ".join(self.last_stderr)
        command = self.command
        if command is not None and command.isolated and said.startswith(_SETUP_TOOLS):
            return SandboxUnavailable(command.unavailable_message(said))
        detail = f": {said}" if said else ""
        return SandboxError(f"the code sandbox process failed to start ({reason}){detail}")
