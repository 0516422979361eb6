"""The sandbox's fork server: a warm Python process that forks one limited child per code job.

`stepline.nodes.sandbox.SandboxPool` runs this file as a script (`python -I <this file>`) with
a scrubbed environment; it is imported by the pool only for its framing constants, so it uses
the standard library alone and does its work in `main()`.

Why a fork server: starting Python and importing what user code needs costs tens of
milliseconds; forking a process that has already done so costs about one. A fresh fork per
job also means no state survives from one job to the next.

Protocol, over this process's stdin (requests) and stdout (events); every frame is a 4-byte
big-endian length followed by that many bytes:

- request ``{"op": "run", "id", "code", "filename", "inputs", "memory_mb", "timeout_s"}``:
  hand the job to a spare child (forked ahead of need), which runs ``main(inputs)``;
- request ``{"op": "kill", "id"}``: kill that job's process group now (its task was cancelled);
- event ``{"event": "ready", "pid"}``: sent once, when the preloaded modules are imported;
- event ``{"event": "started", "id", "pid"}``: a child has the job (so a job whose server
  dies before this event never ran, and may be sent again);
- event ``{"event": "done", "id", "returncode", "timed_out", "cancelled", "sizes",
  "dropped"}``: the child is done or gone; the frame's header is followed by ``sizes[0]`` bytes of
  result JSON, ``sizes[1]`` of stdout and ``sizes[2]`` of stderr (``dropped`` counts the
  stdout and stderr bytes left out past the cap), or it carries ``"error"`` if no child could
  be started.

A child writes its stdout and stderr (file descriptors 1 and 2, so the output of C code and
of subprocesses is caught too) and its result into anonymous in-memory files that this
server reads once the child says it is done, or has died: output printed before a timeout
is kept, and the child never holds the protocol pipes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

FRAME = struct.Struct(">I")
"""The length prefix of every frame, both ways."""

SPARES = 2
"""How many children wait, set up, for the next jobs; one is often not ready in time."""

STREAM_CAP = 64 * 1024
"""How many bytes of a job's stdout, and of its stderr, are sent back; the rest is counted."""

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

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_CHILD_FAILED = 70
_MIB = 1024 * 1024
_MEMORY_ERROR_RESULT = (
    b'{"ok": false, "error_type": "MemoryError", "error_message": "", "traceback": null}'
)
"""Written as is when even reporting a MemoryError runs out of memory."""

_reserve: bytearray | None = None
"""Memory a child frees on MemoryError so that it can still format and send the error."""


@dataclass(eq=False)
class _Child:
    """A forked child: a spare waiting for a job, or one running (or done with) a job."""

    pid: int
    sock: int
    """The server's end of a socket pair: it sends b"g" when the request is in place, the
    child answers b"d" when its result is."""
    fds: tuple[int, int, int, int]
    """Its request, result, stdout and stderr files."""
    job_id: int | None = None
    deadline: float = float("inf")
    timed_out: bool = False
    cancelled: bool = False
    reported: bool = False


class _Server:
    """The fork server's loop: reads requests, hands them to children, reports the results.

    `SPARES` children are forked ahead of need, so that a job does not wait for a fork and
    for the child's setup (together a millisecond or two, more when the scheduler makes a
    new process wait its turn); a child announces its result over its socket, so the report
    does not wait for its exit either.
    """

    def __init__(self, proto_in: int, proto_out: int, wake_fd: int) -> None:
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
        """Children set up and waiting for a job, oldest (most surely ready) first."""
        self.wants_asyncio = False
        """An async job has come: later ones should not each pay for importing asyncio."""
        self.selector = selectors.DefaultSelector()
        self.selector.register(proto_in, selectors.EVENT_READ)
        self.selector.register(wake_fd, selectors.EVENT_READ)
        self.drop_to = _unprivileged_ids()
        self.libc = _load_libc()
        if self.libc is not None:
            # Processes a job leaves behind become ours when it exits, so we reap them.
            self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)

    def serve(self) -> None:
        self.send({"event": "ready", "pid": self.pid})
        while True:
            for key, _ in self.selector.select(self._next_timeout()):
                if isinstance(key.data, _Child):
                    self._on_child_message(key.data)
                elif key.fd == self.wake_fd:
                    _drain(self.wake_fd)
                elif not self._read_requests():
                    self._shutdown()
                    return
            self._reap()
            self._enforce_deadlines()
            if self.wants_asyncio:
                self._preload_asyncio()
            # Forked here, where no request is in memory: a spare inherits no job's data.
            while len(self.spares) < SPARES and (child := self._fork_child()) is not None:
                self.spares.append(child)

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
            child = self.spares.pop(0) if self.spares else self._fork_child()
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

    def _fork_child(self) -> _Child | None:
        import socket

        fds: list[int] = []
        try:
            for name in ("request", "result", "stdout", "stderr"):
                fds.append(_anonymous_file(name))
            ours, theirs = socket.socketpair()
            fds.append(theirs.detach())
            sock = ours.detach()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            sys.stderr.write(f"sandbox server: cannot prepare a child: {exc}\n")
            return None
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (*fds, sock):
                os.close(fd)
            sys.stderr.write(f"sandbox server: cannot fork: {exc}\n")
            return None
        if pid == 0:
            self._become_child(fds[4], (fds[0], fds[1], fds[2], fds[3]))
        os.close(fds[4])
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first, or is already gone
        child = _Child(pid=pid, sock=sock, fds=(fds[0], fds[1], fds[2], fds[3]))
        self.children[pid] = child
        import selectors

        self.selector.register(sock, selectors.EVENT_READ, child)
        return child

    def _become_child(self, sock: int, fds: tuple[int, int, int, int]) -> NoReturn:
        status = _CHILD_FAILED
        try:
            self.buffer.clear()
            self.children.clear()
            self.pids.clear()
            status = _child(self, sock, fds)
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
            if child in self.spares:
                self.spares.remove(child)
            if child.job_id is not None:
                self._report(child, os.waitstatus_to_exitcode(status))
            self._forget_socket(child)
            _close_all(child.fds)

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
        result = b"" if skip else _read_file(result_fd, None)[0]
        out, out_dropped = _read_file(out_fd, STREAM_CAP)
        err, err_dropped = _read_file(err_fd, STREAM_CAP)
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
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _child(server: _Server, sock: int, fds: tuple[int, int, int, int]) -> int:
    """Prepares a fresh child, waits for its one job, runs it; returns the exit status."""
    import resource

    request_fd, result_fd, out_fd, err_fd = fds
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Past the file-size limit a write then fails with an error the user can see, not a kill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    os.setpgid(0, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    # The protocol pipes and other children's files must not be reachable from user code.
    _close_all_but((0, 1, 2, sock, request_fd, result_fd))
    if server.drop_to is not None:
        uid, gid = server.drop_to
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    # After the credentials change, which clears it: the child dies with the server.
    if server.libc is not None:
        server.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server.pid:
        return _CHILD_FAILED

    import io
    import random

    # Every child would otherwise replay the server's random sequence.
    random.seed()
    sys.stdout = _text_stream(io, 1)
    sys.stderr = _text_stream(io, 2)

    # Ready; the rest waits for a job.
    if os.read(sock, 1) != b"g":
        return 0
    request = json.loads(_read_file(request_fd, None)[0])
    os.close(request_fd)
    memory = int(request["memory_mb"]) * _MIB
    _limit(resource, resource.RLIMIT_AS, memory)
    _limit(resource, resource.RLIMIT_FSIZE, max(memory, 16 * _MIB))
    _limit(resource, resource.RLIMIT_CORE, 0)
    cpu_s = int(float(request["timeout_s"])) + 2
    _limit(resource, resource.RLIMIT_CPU, cpu_s, hard=cpu_s + 1)

    global _reserve
    _reserve = bytearray(256 * 1024)
    try:
        encoded = _encode(_run(request))
    except MemoryError:
        _reserve = None
        encoded = _MEMORY_ERROR_RESULT
    for stream in (sys.stdout, sys.stderr):
        # A stream the user broke must not lose the result.
        with contextlib.suppress(Exception):
            stream.flush()
    view = memoryview(encoded)
    while view:
        view = view[os.write(result_fd, view) :]
    os.write(sock, b"d")
    return 0


def _text_stream(io: Any, fd: int) -> Any:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def _run(request: dict[str, Any]) -> dict[str, Any]:
    """Runs the user's code and its `main(inputs)`; returns the result to report."""
    import builtins

    code: str = request["code"]
    filename: str = request["filename"]
    try:
        namespace: dict[str, Any] = {"__name__": "__stepline_code__", "__builtins__": builtins}
        exec(compile(code, filename, "exec", dont_inherit=True), namespace)
        main = namespace.get("main")
        if not callable(main):
            raise NameError("the code defines no function main(inputs)")
        value = main(request["inputs"])
        # Cheaper than an ABC check, and all an `async def main` needs.
        if hasattr(value, "__await__"):
            import asyncio

            value = asyncio.run(_awaited(value))
    except BaseException as exc:  # the user's SystemExit and KeyboardInterrupt are errors too
        return _error(exc, code, filename)
    return {"ok": True, "value": value}


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _encode(result: dict[str, Any]) -> bytes:
    try:
        return json.dumps(result, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps(
            {
                "ok": False,
                "error_type": "TypeError",
                "error_message": f"main() must return a JSON-serialisable value: {exc}",
                "traceback": None,
            }
        ).encode()


def _error(exc: BaseException, code: str, filename: str) -> dict[str, Any]:
    """Describes an exception from user code, its traceback starting at the user's frames."""
    global _reserve
    if isinstance(exc, MemoryError):
        _reserve = None
    import linecache
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    try:
        # Lets the traceback show the user's source lines.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        text: str | None = "".join(traceback.format_exception(type(exc), exc, tb))
        message = str(exc)
    except Exception:
        text, message = None, ""
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "error_message": message,
        "traceback": text,
    }


def _limit(resource: Any, which: int, value: int, *, hard: int | None = None) -> None:
    """Lowers a resource limit (soft and hard, so user code cannot raise it back)."""
    _, current_hard = resource.getrlimit(which)
    wanted = value if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        value = min(value, current_hard)
        wanted = min(wanted, current_hard)
    resource.setrlimit(which, (value, wanted))


def _close_all_but(keep: tuple[int, ...]) -> None:
    low = 0
    for fd in sorted(keep):
        # Guarded: closerange(n, n) would close every descriptor from n up on Python 3.11.
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _anonymous_file(name: str) -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create(f"stepline-{name}", os.MFD_CLOEXEC)
    import tempfile

    fd, path = tempfile.mkstemp(prefix=f"stepline-{name}-")
    os.unlink(path)
    return fd


def _read_file(fd: int, cap: int | None) -> tuple[bytes, int]:
    """The first `cap` bytes of a file (all if None) and how many bytes were left out."""
    size = os.fstat(fd).st_size
    wanted = size if cap is None else min(size, cap)
    chunks: list[bytes] = []
    offset = 0
    while offset < wanted:
        chunk = os.pread(fd, wanted - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks), size - offset


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _unprivileged_ids() -> tuple[int, int] | None:
    """Run as root, children become `nobody`: they cannot read the server's /proc entries.

    Only if `nobody` can read Python's own library directories (not so with an interpreter
    installed under /root, say); otherwise children stay root, and stderr says why.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
        ids = (entry.pw_uid, entry.pw_gid)
    except KeyError:
        ids = (65534, 65534)
    return ids if _can_run_as(ids) else None


def _can_run_as(ids: tuple[int, int]) -> bool:
    """Whether a process with these ids can read the interpreter's libraries and the cwd."""
    import sysconfig

    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = [os.getcwd(), *(sysconfig.get_path(name) for name in names)]
    paths = [path for path in paths if os.path.exists(path)]
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
            unreadable = [path for path in paths if not os.access(path, os.R_OK | os.X_OK)]
            if unreadable:
                sys.stderr.write(
                    f"sandbox server: user {ids[0]} cannot read {unreadable[0]}, "
                    "so code runs as root\n"
                )
                sys.stderr.flush()
            else:
                status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return status == 0


def _load_libc() -> Any:
    """The C library, for prctl(PR_SET_PDEATHSIG); None where there is none to load."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def main() -> None:
    import gc
    import importlib

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
    for name in PRELOAD:
        importlib.import_module(name)
    server = _Server(proto_in, proto_out, wake_r)
    # Children then do not copy pages merely because the collector walks old objects.
    gc.freeze()
    server.serve()


if __name__ == "__main__":
    main()
