"""Helpers for sandbox tests: pools per isolation mode, and the host's view of jobs.

In namespaces a job's process ids are its own (it is PID 1), so tests find a job's
processes on the host by a marker in their command line instead: a job runs
`sleep <marker>`, a number no other process on the machine has in its arguments.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stepline.settings import Settings

ISOLATIONS = pytest.mark.parametrize("isolation", ["namespaces", "process"])

_markers = itertools.count(1)


def settings_for(isolation: str, **overrides: object) -> Settings:
    return Settings(code_isolation=isolation, **overrides)  # type: ignore[arg-type]


def new_marker() -> str:
    """A `sleep` duration unique to this test: `sleep 7391.000123` (seconds)."""
    return f"{random.randint(5000, 9000)}.{os.getpid() % 1000:03d}{next(_markers):03d}"


def host_pids(marker: str) -> list[int]:
    """Host process ids of every process whose arguments include `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in args:
            found.append(int(entry.name))
    return found


def host_uid(pid: int) -> int:
    """The real user id of a host process, as the host sees it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def gone(pid: int) -> bool:
    """True once the process no longer exists (a zombie, not yet reaped, still does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
