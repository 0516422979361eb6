"""One job's process: set up while it waits as a spare, then it runs `main(inputs)` once.

Set up with as few Python calls as will do: the first write to each page of memory shared
with the server copies that page, and a child's setup is mostly such copies. (What all
children need alike, the server did once; and `random` reseeds itself in every forked
child.)

A child writes its stdout and stderr (file descriptors 1 and 2, so the output of C code and
of subprocesses is caught too) and its result into anonymous in-memory files that the
server reads once the child says it is done, or has died: output printed before a timeout
is kept, and the child never holds the protocol pipes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from . import namespaces, privileges, relay
from .files import close_all_but, read_file
from .protocol import ServerOptions

MIB = 1024 * 1024
_WARM_UP_CODE = (
    "def main(inputs):\n    return {'warm': [inputs['n'] + 1, str(inputs['s']), 2.5, None, True]}\n"
)
"""What a spare runs before it waits: a job's first steps then find their memory copied."""
_MEMORY_ERROR_RESULT = (
    b'{"ok": false, "error_type": "MemoryError", "error_message": "", "traceback": null}'
)
"""Written as is when even reporting a MemoryError runs out of memory."""
NAMESPACE_WORKDIR = "/tmp"
"""A job's working directory, HOME and TMPDIR in namespaces: its own tmpfs."""

_reserve: bytearray | None = None
"""Memory a child frees on MemoryError so that it can still format and send the error."""


@dataclass(frozen=True)
class ChildSetup:
    """What a child needs of its server to set itself up."""

    server_pid: int
    options: ServerOptions
    libc: Any
    drop_to: tuple[int, int] | None
    """Process isolation as root: the ids the child takes (see `privileges`)."""


def run_child(
    setup: ChildSetup, sock: int, fds: tuple[int, int, int, int], job_dir: str, *, network: bool
) -> int:
    """Prepares a fresh child, waits for its one job, runs it; returns the exit status."""
    import resource

    request_fd, result_fd, out_fd, err_fd = fds
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)
    os.dup2(out_fd, 1)  # sys.stdout and sys.stderr, made by the server, write to fds 1 and 2
    os.dup2(err_fd, 2)
    # The protocol pipes and other children's files must not be reachable from user code.
    close_all_but((0, 1, 2, sock, request_fd, result_fd))
    libc = setup.libc
    if setup.options.namespaces:
        options = setup.options
        namespaces.enter_job_namespaces(
            libc,
            tmp_mb=options.tmp_mb,
            max_processes=options.max_processes,
            network=network,
            egress=options.egress,
        )
        privileges.drop_everything(libc)
        if network:
            relay.start_relay()
    elif setup.drop_to is not None:
        privileges.become(setup.drop_to)
        if libc is not None:
            # Changing user made the process dumpable again (as `fs.suid_dumpable` says).
            libc.prctl(privileges.PR_SET_DUMPABLE, 0)
    _enter_job_dir(job_dir)
    if libc is not None:
        # After the credentials change, which clears it: the child dies with the server.
        libc.prctl(privileges.PR_SET_PDEATHSIG, signal.SIGKILL)
    # The server died before the death signal was set (in namespaces the parent is outside
    # the child's PID namespace, so getppid() is 0 there: the socket tells instead).
    if not setup.options.namespaces and os.getppid() != setup.server_pid:
        return 70
    _warm_up()

    # Ready; the rest waits for a job.
    if os.read(sock, 1) != b"g":
        return 0
    request = json.loads(read_file(request_fd, None)[0])
    os.close(request_fd)
    memory = int(request["memory_mb"]) * MIB
    _limit(resource, resource.RLIMIT_AS, memory)
    _limit(resource, resource.RLIMIT_FSIZE, max(memory, 16 * MIB))
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
    """Makes the job's own directory its working directory, HOME and TMPDIR."""
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
