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
import itertools
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

SPARES = 4
"""How many children wait, set up, for the next jobs (see `_Server._refill`)."""

REFILL_AT = 1
"""Spares are forked again, `SPARES` at once, when no more than this many are left."""

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
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_SECBIT_NOROOT_AND_LOCK = 0x3
"""SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: a root process gains no capabilities by exec."""
_CAP_VERSION_3 = 0x20080522
_CAP_LAST = 63
"""Past the last capability any kernel knows: dropping unknown ones fails harmlessly."""
_JOB_DIR_PREFIX = "job-"
_WARM_UP_CODE = (
    "def main(inputs):\n    return {'warm': [inputs['n'] + 1, str(inputs['s']), 2.5, None, True]}\n"
)
"""What a spare runs before it waits: a job's first steps then find their memory copied."""
_CHILD_FAILED = 70
_FORK_RETRY_S = 0.05
"""How long the server waits before it forks a spare again after one failed."""
_REMOVE_PASSES = 8
"""How many levels of directories a job made unreadable a job's directory is cleared of."""
_MIB = 1024 * 1024
_MEMORY_ERROR_RESULT = (
    b'{"ok": false, "error_type": "MemoryError", "error_message": "", "traceback": null}'
)
"""Written as is when even reporting a MemoryError runs out of memory."""

_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
"""What a job's environment keeps of the server's (which the pool has already scrubbed)."""

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
    job_dir: str
    """Its own working directory (and HOME and TMPDIR), removed once it is reaped."""
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

    def __init__(self, proto_in: int, proto_out: int, wake_fd: int) -> None:
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
        for name in os.listdir(self.job_root):  # what a killed server left
            _remove_tree(os.path.join(self.job_root, name))
        self.drop_to = _unprivileged_ids()
        self.libc = _load_libc()
        if self.libc is not None:
            # Processes a job leaves behind become ours when it exits, so we reap them.
            self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
            _harden(self.libc, keep_capabilities=self.drop_to is not None)

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
        name = f"{_JOB_DIR_PREFIX}{self.pid}-{next(self.job_dirs)}"
        job_dir = os.path.join(self.job_root, name)
        try:
            for name in ("request", "result", "stdout", "stderr"):
                fds.append(_anonymous_file(name))
            ours, theirs = socket.socketpair()
            fds.append(theirs.detach())
            sock = ours.detach()
            # Made here, where it costs a tenth of what it would in the child.
            os.mkdir(job_dir, 0o700)
            if self.drop_to is not None:
                os.chown(job_dir, *self.drop_to)
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _remove_tree(job_dir)
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
            _remove_tree(job_dir)
            sys.stderr.write(f"sandbox server: cannot fork: {exc}\n")
            return None
        if pid == 0:
            self._become_child(fds[4], (fds[0], fds[1], fds[2], fds[3]), job_dir)
        os.close(fds[4])
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first, or is already gone
        child = _Child(pid=pid, sock=sock, fds=(fds[0], fds[1], fds[2], fds[3]), job_dir=job_dir)
        self.children[pid] = child
        import selectors

        self.selector.register(sock, selectors.EVENT_READ, child)
        return child

    def _become_child(self, sock: int, fds: tuple[int, int, int, int], job_dir: str) -> NoReturn:
        status = _CHILD_FAILED
        try:
            self.buffer.clear()
            self.children.clear()
            self.pids.clear()
            status = _child(self, sock, fds, job_dir)
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
                # It died before it had a job: its setup failed, or it was killed.
                self.spares.remove(child)
                self.fork_after = time.monotonic() + _FORK_RETRY_S
            if child.job_id is not None:
                self._report(child, os.waitstatus_to_exitcode(status))
            self._forget_socket(child)
            _close_all(child.fds)
            # Dead now, it writes no more: nothing it wrote there reaches the next job.
            _remove_tree(child.job_dir)
            self._sweep()

    def _sweep(self) -> None:
        """Removes what jobs wrote beside their own directories (`../x`): it would outlive them."""
        try:
            names = os.listdir(self.job_root)
        except OSError:
            return
        if len(names) <= len(self.children):
            return  # most likely only the children's own directories, as it should be
        live = {os.path.basename(child.job_dir) for child in self.children.values()}
        for name in names:
            if name not in live:
                _remove_tree(os.path.join(self.job_root, name))

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
        # Before the next request is read: the next job finds nothing this one wrote. (The
        # job's processes were just killed; what one may yet have written, `_reap` removes.)
        _remove_tree(child.job_dir)
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
            _remove_tree(child.job_dir)


def _child(server: _Server, sock: int, fds: tuple[int, int, int, int], job_dir: str) -> int:
    """Prepares a fresh child, waits for its one job, runs it; returns the exit status."""
    import resource

    # Set up with as few Python calls as will do: the first write to each page of memory
    # shared with the server copies that page, and a child's setup is mostly such copies.
    # (What all children need alike, the server did once: see `main` and `_harden`; and
    # `random` reseeds itself in every forked child.)
    request_fd, result_fd, out_fd, err_fd = fds
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)
    os.dup2(out_fd, 1)  # sys.stdout and sys.stderr, made by the server, write to fds 1 and 2
    os.dup2(err_fd, 2)
    # The protocol pipes and other children's files must not be reachable from user code.
    _close_all_but((0, 1, 2, sock, request_fd, result_fd))
    libc = server.libc
    if server.drop_to is not None:
        uid, gid = server.drop_to
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if libc is not None:
            # Changing user made the process dumpable again (as `fs.suid_dumpable` says).
            libc.prctl(_PR_SET_DUMPABLE, 0)
    _enter_job_dir(job_dir)
    if libc is not None:
        # After the credentials change, which clears it: the child dies with the server.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server.pid:
        return _CHILD_FAILED
    _warm_up()

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


def _enter_job_dir(path: str) -> None:
    """Makes the job's own directory (made by the server) its working directory, HOME and
    TMPDIR. The directory goes once the child is reaped (see `_Server._reap`)."""
    os.chdir(path)
    environ = os.environ
    environ["HOME"] = path
    environ["TMPDIR"] = path
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # type: ignore[attr-defined]  # read TMPDIR anew


def _warm_up() -> None:
    """Runs a tiny job's steps (read a request, compile, call, encode) and throws it away.

    A forked child shares its memory with the server until it writes to it; the first write
    to each page copies that page. A job's first steps write to a few hundred pages (object
    allocation, reference counts, the compiler's state), which costs about 0.3 ms: here,
    while the child waits, rather than while the job does.
    """
    request = json.loads('{"inputs": {"n": 1, "s": "text"}, "filename": "<warm-up>"}')
    namespace: dict[str, Any] = {"__name__": "__stepline_warm_up__"}
    exec(compile(_WARM_UP_CODE, request["filename"], "exec", dont_inherit=True), namespace)
    _encode({"ok": True, "value": namespace["main"](request["inputs"])})


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
    """Whether a process with these ids can read the interpreter's libraries and reach the
    directories in the cwd."""
    import sysconfig

    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = [sysconfig.get_path(name) for name in names]
    paths = [path for path in paths if os.path.exists(path)]
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
            unreadable = [path for path in paths if not os.access(path, os.R_OK | os.X_OK)]
            if not os.access(os.getcwd(), os.X_OK):  # where its own directory is
                unreadable.append(os.getcwd())
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


def _harden(libc: Any, *, keep_capabilities: bool) -> None:
    """Hides this process from its children and keeps them from gaining privileges.

    Not dumpable: processes without CAP_SYS_PTRACE, even of the same user, can read neither
    its /proc/<pid>/environ nor its memory (children inherit this). No new privileges: no
    child gains any by executing a set-user-ID program. As root, also: root gains no
    capabilities by exec, none can come back through the bounding set, and unless this
    process needs them to make its children `nobody` (`keep_capabilities`) it drops them
    all: children that stay root are then root without capabilities, which cannot read the
    /proc entries of processes that are not dumpable (this one, the pool's), nor override
    file permissions. Each step fails soft (an older kernel, a container without
    CAP_SETPCAP): the rest still holds.
    """
    libc.prctl(_PR_SET_DUMPABLE, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.geteuid() == 0:
        libc.prctl(_PR_SET_SECUREBITS, _SECBIT_NOROOT_AND_LOCK)
        for capability in range(_CAP_LAST + 1):
            libc.prctl(_PR_CAPBSET_DROP, capability)
        if not keep_capabilities:
            _drop_capabilities(libc)


def _drop_capabilities(libc: Any) -> None:
    """Clears the effective, permitted and inheritable capabilities of this process.

    Fails soft, as the rest of `_harden` does: where capset is refused the child stays as
    privileged as it was.
    """
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

    class Data(ctypes.Structure):
        _fields_ = (
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        )

    header = Header(_CAP_VERSION_3, 0)
    data = (Data * 2)()
    libc.capset(ctypes.byref(header), data)


def _remove_tree(path: str) -> None:
    """Removes a job's directory and whatever the job left in it (or a file); never raises."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except NotADirectoryError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # a file or a link (never followed)
        return
    except OSError:
        pass
    import shutil

    try:
        # Each pass gives back the rights the job took away on one more level of directories.
        for _ in range(_REMOVE_PASSES):
            shutil.rmtree(path, onerror=_give_back_rights)
            if not os.path.lexists(path):
                return
    except Exception as exc:  # e.g. directories nested past the recursion limit
        sys.stderr.write(f"sandbox server: cannot remove {path}: {exc!r}\n")
        return
    sys.stderr.write(f"sandbox server: cannot remove all of {path}\n")


def _give_back_rights(function: Any, path: str, _exc_info: Any) -> None:
    """`shutil.rmtree`'s error handler: the job made a directory unreadable or unwritable.

    Gives its owner the rights back through an O_PATH descriptor opened without following a
    link, so that a job cannot turn this onto a file elsewhere. Then the next pass of
    `_remove_tree` goes further.
    """
    if function in (os.unlink, os.rmdir, os.remove):
        path = os.path.dirname(path)  # removing an entry needs rights on its directory
    flags = getattr(os, "O_PATH", 0) | os.O_DIRECTORY | os.O_NOFOLLOW
    if not flags & getattr(os, "O_PATH", 0):
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, flags)
        try:
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
        finally:
            os.close(fd)


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
    server = _Server(proto_in, proto_out, wake_r)
    # Children then do not copy pages merely because the collector walks old objects.
    gc.freeze()
    server.serve()


if __name__ == "__main__":
    main()
