"""The sandbox's fork server: a warm Python process that forks one confined child per code job.

`stepline.sandbox.pool.SandboxPool` starts it (see `stepline.sandbox.launch`), inside
bubblewrap or, with process isolation only, directly, and talks to it over its stdin and
stdout (see `protocol`).

Why a fork server: starting Python and importing what user code needs costs tens of
milliseconds; forking a process that has already done so costs about one. A fresh fork per
job also means no state survives from one job to the next.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from . import privileges
from .child import NAMESPACE_WORKDIR, ChildSetup, run_child
from .files import anonymous_file, close_all, drain, read_file, remove_tree
from .namespaces import PidNamespaces
from .protocol import FRAME, STREAM_CAP, ServerOptions

SPARES = 4
"""How many children wait, set up, for the next jobs (see `_Server._refill`)."""

REFILL_AT = 1
"""Spares are forked again, `SPARES` at once, when no more than this many are left."""

PRELOAD = (
    "base64",
    "bisect",
    "collections",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "heapq",
    "io",
    "itertools",
    "json",
    "linecache",
    "math",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "textwrap",
    "traceback",
    "typing",
    "unicodedata",
    "urllib.parse",
    "zoneinfo",
)
"""Modules user code commonly imports, imported once here so that no job pays for them.

Left out on purpose: each page the server maps makes every fork and exit dearer, and
`asyncio` (with `ssl`) or `hashlib` would each add a third. `asyncio` is imported here
once the first job with an `async def` arrives (see `_Server.wants_asyncio`).
"""


_JOB_DIR_PREFIX = "job-"
_CHILD_FAILED = 70
_FORK_RETRY_S = 0.05
"""How long the server waits before it forks a spare again after one failed."""
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
"""What a job's environment keeps of the server's (which the pool has already scrubbed)."""


@dataclass(eq=False)
class _Child:
    """A forked child: a spare waiting for a job, or one running (or done with) a job."""

    pid: int
    sock: int
    """The server's end of a socket pair: it sends b"g" when the request is in place, the
    child answers b"d" when its result is."""
    fds: tuple[int, int, int, int]
    """Its request, result, stdout and stderr files."""
    job_dir: str
    """Its own working directory (and HOME and TMPDIR), removed once it is reaped."""
    network: bool = False
    """Set up for a job whose node asked for the network (see `namespaces`)."""
    job_id: int | None = None
    deadline: float = float("inf")
    timed_out: bool = False
    cancelled: bool = False
    reported: bool = False


class _Server:
    """The fork server's loop: reads requests, hands them to children, reports the results.

    Up to `SPARES` children are forked ahead of need, so that a job waits neither for a fork
    nor for the child's setup (together a millisecond or two, more when the scheduler makes
    a new process wait its turn); a child announces its result over its socket, so the report
    does not wait for its exit either.
    """

    def __init__(self, proto_in: int, proto_out: int, wake_fd: int, options: ServerOptions) -> None:
        import select
        import selectors

        self.pid = os.getpid()
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.wake_fd = wake_fd
        self.buffer = bytearray()
        self.children: dict[int, _Child] = {}
        """Every child not yet reaped, by pid; a pid leaves only once reaped, so killing its
        process group is safe until then."""
        self.pids: dict[int, int] = {}
        """Child pid by job id, while the job runs."""
        self.spares: list[_Child] = []
        self.network_spares: list[_Child] = []
        """At most one child set up with the network, once a job has asked for it."""
        self.wants_network = False
        """Children set up and waiting for a job, oldest (most surely ready) first."""
        self.wants_asyncio = False
        """An async job has come: later ones should not each pay for importing asyncio."""
        self.fork_after = 0.0
        """When spares may be forked again, after a fork failed or a spare died."""
        self.selector = selectors.DefaultSelector()
        self.selector.register(proto_in, selectors.EVENT_READ)
        self.selector.register(wake_fd, selectors.EVENT_READ)
        self.requests = select.poll()
        """Polls the requests alone: whether one waits, between two forks."""
        self.requests.register(proto_in, select.POLLIN)
        self.job_root = os.getcwd()
        """Where each child gets its own working directory, removed once it is reaped."""
        self.job_dirs = itertools.count(1)
        self.options = options
        self.libc = privileges.load_libc()
        self.pid_namespaces: PidNamespaces | None = None
        drop_to = None
        if options.namespaces:
            # Each job's directory is a tmpfs of its own (see `namespaces`): nothing to tidy.
            self.pid_namespaces = PidNamespaces(self.libc)
            privileges.prepare(self.libc)
        else:
            for name in os.listdir(self.job_root):  # what a killed server left
                remove_tree(os.path.join(self.job_root, name))
            drop_to = privileges.unprivileged_ids()
            if self.libc is not None:
                # Processes a job leaves behind become ours when it exits, so we reap them.
                self.libc.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
                privileges.harden(self.libc, keep_capabilities=drop_to is not None)
        self.drop_to = drop_to
        self.setup = ChildSetup(self.pid, options, self.libc, drop_to)

    def serve(self) -> None:
        self.send({"event": "ready", "pid": self.pid})
        while True:
            for key, _ in self.selector.select(self._next_timeout()):
                if isinstance(key.data, _Child):
                    self._on_child_message(key.data)
                elif key.fd == self.wake_fd:
                    drain(self.wake_fd)
                elif not self._read_requests():
                    self._shutdown()
                    return
            self._reap()
            self._enforce_deadlines()
            if self.wants_asyncio:
                self._preload_asyncio()
            # Forked here, where no request is in memory: a spare inherits no job's data.
            self._refill()

    def _spares_wanted(self) -> int:
        """How many spares to fork now (once `fork_after` has passed).

        A fork stops this loop for a few hundred microseconds and a new child's setup takes
        a core for as long again: done while a job runs, both would delay its answer (and a
        woken child often waits for the forking server's core). So while a job runs only an
        empty pool of spares gets one more. While none runs, spares are forked several at a
        time: every fork makes this process's own memory copy-on-write again, and the pages
        it then writes to cost it a page fault each (some 250 per turn of the loop), so
        forking in batches pays that once per batch rather than once per job.
        """
        if self.pids:
            return 0 if self.spares else 1
        return SPARES - len(self.spares) if len(self.spares) <= REFILL_AT else 0

    def _refill(self) -> None:
        """Forks the spares wanted, back to back, unless something comes to handle first."""
        for _ in range(self._spares_wanted()):
            if time.monotonic() < self.fork_after:
                return
            child = self._fork_child()
            if child is None:
                self.fork_after = time.monotonic() + _FORK_RETRY_S
                return
            self.spares.append(child)
            if self.requests.poll(0):
                return  # a request came: the rest of the batch can wait
        if self.wants_network and not self.network_spares and not self.pids:
            if time.monotonic() >= self.fork_after:
                child = self._fork_child(network=True)
                if child is not None:
                    self.network_spares.append(child)

    def _preload_asyncio(self) -> None:
        import gc
        import importlib

        importlib.import_module("asyncio")
        self.wants_asyncio = False
        gc.freeze()

    def send(self, header: dict[str, Any], *parts: bytes) -> None:
        encoded = json.dumps(header).encode()
        data = memoryview(b"".join((FRAME.pack(len(encoded)), encoded, *parts)))
        while data:
            data = data[os.write(self.proto_out, data) :]

    def _next_timeout(self) -> float | None:
        deadlines = [
            child.deadline
            for child in self.children.values()
            if child.job_id is not None and not (child.reported or child.timed_out)
        ]
        if self._spares_wanted():
            deadlines.append(self.fork_after)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _read_requests(self) -> bool:
        """Reads what the pool sent and acts on each whole frame; False at end of input."""
        try:
            data = os.read(self.proto_in, 1 << 20)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.buffer += data
        del data
        while len(self.buffer) >= FRAME.size:
            (size,) = FRAME.unpack_from(self.buffer)
            if len(self.buffer) < FRAME.size + size:
                break
            frame = bytes(self.buffer[FRAME.size : FRAME.size + size])
            del self.buffer[: FRAME.size + size]
            self._handle(frame, json.loads(frame))
        return True

    def _handle(self, frame: bytes, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "run":
            self._start_job(frame, request)
        elif op == "kill":
            pid = self.pids.get(request["id"])
            if pid is not None:
                self.children[pid].cancelled = True
                _kill_group(pid)
        else:
            sys.stderr.write(f"sandbox server: unknown request {op!r}\n")

    def _start_job(self, frame: bytes, request: dict[str, Any]) -> None:
        job_id = request["id"]
        if "asyncio" not in sys.modules and "async" in request["code"]:
            self.wants_asyncio = True
        for _ in range(2):
            network = bool(request.get("network")) and self.pid_namespaces is not None
            spares = self.network_spares if network else self.spares
            self.wants_network = self.wants_network or network
            child = spares.pop(0) if spares else self._fork_child(network=network)
            if child is None:
                break
            request_fd = child.fds[0]
            try:
                view = memoryview(frame)
                while view:
                    view = view[os.pwrite(request_fd, view, len(frame) - len(view)) :]
            except OSError as exc:
                # Out of memory for the request, say: no other child would fare better.
                _kill_group(child.pid)
                self.send({"event": "done", "id": job_id, "error": f"cannot pass the job: {exc}"})
                return
            # Said before the child may start: a job the pool never heard of never ran.
            self.send({"event": "started", "id": job_id, "pid": child.pid})
            try:
                os.write(child.sock, b"g")
            except OSError:
                # The spare died unnoticed so far; the reaper tidies up after it.
                _kill_group(child.pid)
                continue
            child.job_id = job_id
            child.deadline = time.monotonic() + float(request["timeout_s"])
            self.pids[job_id] = child.pid
            return
        self.send({"event": "done", "id": job_id, "error": "cannot start a process for the job"})

    def _fork_child(self, *, network: bool = False) -> _Child | None:
        import socket

        fds: list[int] = []
        namespaces = self.pid_namespaces is not None
        name = f"{_JOB_DIR_PREFIX}{self.pid}-{next(self.job_dirs)}"
        job_dir = NAMESPACE_WORKDIR if namespaces else os.path.join(self.job_root, name)
        try:
            for name in ("request", "result", "stdout", "stderr"):
                fds.append(anonymous_file(name))
            ours, theirs = socket.socketpair()
            fds.append(theirs.detach())
            sock = ours.detach()
            if self.pid_namespaces is not None:
                self.pid_namespaces.before_fork()
            else:
                # Made here, where it costs a tenth of what it would in the child.
                os.mkdir(job_dir, 0o700)
                if self.drop_to is not None:
                    os.chown(job_dir, *self.drop_to)
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self._remove_job_dir(job_dir)
            sys.stderr.write(f"sandbox server: cannot prepare a child: {exc}\n")
            return None
        # Nothing buffered may be inherited (a child's fds 1 and 2 are its own files).
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (*fds, sock):
                os.close(fd)
            self._remove_job_dir(job_dir)
            sys.stderr.write(f"sandbox server: cannot fork: {exc}\n")
            return None
        if pid == 0:
            self._become_child(fds[4], (fds[0], fds[1], fds[2], fds[3]), job_dir, network)
        os.close(fds[4])
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first, or is already gone
        child = _Child(
            pid=pid,
            sock=sock,
            fds=(fds[0], fds[1], fds[2], fds[3]),
            job_dir=job_dir,
            network=network,
        )
        self.children[pid] = child
        import selectors

        self.selector.register(sock, selectors.EVENT_READ, child)
        return child

    def _become_child(
        self, sock: int, fds: tuple[int, int, int, int], job_dir: str, network: bool
    ) -> NoReturn:
        status = _CHILD_FAILED
        try:
            self.buffer.clear()
            self.children.clear()
            self.pids.clear()
            status = run_child(self.setup, sock, fds, job_dir, network=network)
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)

    def _on_child_message(self, child: _Child) -> None:
        try:
            data = os.read(child.sock, 16)
        except OSError:
            data = b""
        if b"d" in data and child.job_id is not None:
            # The child's exit status is 0 from here on; it is reaped later.
            self._report(child, 0)
        elif not data:
            self._forget_socket(child)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            spares = self.network_spares if child.network else self.spares
            if child in spares:
                # It died before it had a job: its setup failed, or it was killed.
                spares.remove(child)
                self.fork_after = time.monotonic() + _FORK_RETRY_S
            if child.job_id is not None:
                self._report(child, os.waitstatus_to_exitcode(status))
            self._forget_socket(child)
            close_all(child.fds)
            # Dead now, it writes no more: nothing it wrote there reaches the next job.
            self._remove_job_dir(child.job_dir)
            self._sweep()

    def _remove_job_dir(self, job_dir: str) -> None:
        if self.pid_namespaces is None:  # in namespaces, a tmpfs that goes with the job
            remove_tree(job_dir)

    def _sweep(self) -> None:
        """Removes what jobs wrote beside their own directories (`../x`): it would outlive them."""
        if self.pid_namespaces is not None:
            return
        try:
            names = os.listdir(self.job_root)
        except OSError:
            return
        if len(names) <= len(self.children):
            return  # most likely only the children's own directories, as it should be
        live = {os.path.basename(child.job_dir) for child in self.children.values()}
        for name in names:
            if name not in live:
                remove_tree(os.path.join(self.job_root, name))

    def _report(self, child: _Child, returncode: int) -> None:
        if child.reported:
            return
        child.reported = True
        assert child.job_id is not None
        self.pids.pop(child.job_id, None)
        # Anything the job started in the background dies with it.
        _kill_group(child.pid)
        _, result_fd, out_fd, err_fd = child.fds
        skip = child.timed_out or child.cancelled
        result = b"" if skip else read_file(result_fd, None)[0]
        out, out_dropped = read_file(out_fd, STREAM_CAP)
        err, err_dropped = read_file(err_fd, STREAM_CAP)
        header = {
            "event": "done",
            "id": child.job_id,
            "returncode": returncode,
            "timed_out": child.timed_out,
            "cancelled": child.cancelled,
            "sizes": [len(result), len(out), len(err)],
            "dropped": [out_dropped, err_dropped],
        }
        self.send(header, result, out, err)
        # Before the next request is read: the next job finds nothing this one wrote. (The
        # job's processes were just killed; what one may yet have written, `_reap` removes.)
        self._remove_job_dir(child.job_dir)
        self._sweep()

    def _forget_socket(self, child: _Child) -> None:
        if child.sock >= 0:
            self.selector.unregister(child.sock)
            os.close(child.sock)
            child.sock = -1

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            running = child.job_id is not None and not (child.reported or child.timed_out)
            if running and child.deadline <= now:
                child.timed_out = True
                _kill_group(child.pid)

    def _shutdown(self) -> None:
        for pid in self.children:
            _kill_group(pid)
        for pid, child in list(self.children.items()):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._remove_job_dir(child.job_dir)


def main() -> None:
    import gc
    import importlib
    import io

    # The protocol gets private descriptors; stray writes to fd 1 go to stderr instead.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    os.set_blocking(proto_in, False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A handler (not SIG_DFL) so that SIGCHLD is delivered and wakes the loop.
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    # For the children, set once here: past their file-size limit a write then fails with
    # an error the user can see, not a kill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # The streams every child's code prints to (fds 1 and 2 are then the child's files).
    sys.stdout = _text_stream(io, 1)
    sys.stderr = _text_stream(io, 2)
    # The pool already scrubbed the environment; what is left of it the jobs inherit.
    for name in set(os.environ) - set(_KEPT_ENV):
        del os.environ[name]
    for name in PRELOAD:
        importlib.import_module(name)
    # What every child needs for its limits: imported once here, not once per child.
    importlib.import_module("resource")
    options = ServerOptions.from_json(sys.argv[1]) if len(sys.argv) > 1 else ServerOptions()
    server = _Server(proto_in, proto_out, wake_r, options)
    # Children then do not copy pages merely because the collector walks old objects.
    gc.freeze()
    server.serve()


def _text_stream(io: Any, fd: int) -> Any:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def _kill_group(pid: int) -> None:
    """Kills a child and its process group; in namespaces, the kernel then kills every
    process left in its PID namespace too, whatever group or session it made."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
