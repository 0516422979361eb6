"""CPU-bound document work (pypdf) in a child process that a step's timeout can kill.

A thread cannot be stopped: when a step running pypdf in one timed out, the step failed but
the thread went on parsing, burning a core for as long as the document took. Here the work
runs in a process forked from a small server process (multiprocessing's `forkserver`,
which has the document modules imported already, so a call costs a fork, not an
interpreter start); when the awaiting task is cancelled (the step's timeout, a run
cancelled), the child is killed (SIGKILL) and reaped before the cancellation goes on.

The function and its arguments are pickled to the child; its result or exception comes
back pickled through a pipe the event loop reads without blocking.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from typing import Any, TypeVar

T = TypeVar("T")

PRELOADED = [
    "pypdf",
    "stepline.nodes.document_text",
    "stepline.nodes.split",
    "stepline.nodes.edit",
    "stepline.nodes.merge_pdf",
]
"""Imported once by the fork server, so that every child starts with them."""
REAP_TIMEOUT_S = 5.0

_context: ForkServerContext = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOADED)


class ChildProcessDied(RuntimeError):
    """The child ended without an answer (killed from outside, out of memory)."""


async def run_in_child(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a child process: its result, or the exception it raised. `fn` must be
    a module-level function; it, its arguments and its result must pickle."""
    reader, writer = _context.Pipe(duplex=False)
    process = _context.Process(
        target=_child, args=(writer, fn, args), daemon=True, name=f"stepline {fn.__name__}"
    )
    try:
        # Starting pickles the arguments (a whole document) to the fork server: off the loop.
        await _finish_even_if_cancelled(asyncio.to_thread(process.start), process)
    finally:
        writer.close()
    try:
        payload = await _read_to_end(reader)
    except BaseException:
        _kill(process)
        raise
    finally:
        reader.close()
    await asyncio.to_thread(process.join, REAP_TIMEOUT_S)
    if not payload:
        raise ChildProcessDied(
            f"the child process of {fn.__name__} ended with no answer "
            f"(exit code {process.exitcode})"
        )
    ok, value = pickle.loads(payload)
    if ok:
        return value
    raise value


async def _finish_even_if_cancelled(starting: Any, process: Any) -> None:
    """Await the start; if cancelled meanwhile, let it finish, kill the child, re-raise."""
    task = asyncio.ensure_future(starting)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await task
        finally:
            _kill(process)
        raise


async def _read_to_end(conn: Connection) -> bytes:
    """Everything the child writes to the pipe, until it closes it (or dies)."""
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(loop=loop)
    pipe = os.fdopen(os.dup(conn.fileno()), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream, loop=loop), pipe
    )
    try:
        return await stream.read()
    finally:
        transport.close()


def _kill(process: Any) -> None:
    """SIGKILL the child (if it started) and reap it."""
    if process.pid is None:
        return
    process.kill()
    process.join(REAP_TIMEOUT_S)


def _die_with_parent() -> None:
    """Exit as soon as the process that asked for this work dies (even by SIGKILL): a
    document's work must not outlive the worker that wanted it. The fork server cannot
    tell (each child holds its liveness pipe open), so a thread here waits on the
    requester's sentinel, which multiprocessing hands every child."""
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is None:
        return

    def watch() -> None:
        wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="stepline-parent-watch", daemon=True).start()


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _die_with_parent()
    try:
        outcome: tuple[bool, Any] = (True, fn(*args))
    except BaseException as exc:  # the parent re-raises it
        outcome = (False, exc)
    try:
        payload = pickle.dumps(outcome)
    except Exception as exc:  # an exception (or result) that does not pickle
        problem = RuntimeError(f"{fn.__name__}: {type(outcome[1]).__name__}: {outcome[1]} ({exc})")
        payload = pickle.dumps((False, problem))
    with open(conn.fileno(), "wb", closefd=False) as out:
        out.write(payload)
    conn.close()
