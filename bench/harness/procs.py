"""Running case scripts in fresh processes, and reading processes' CPU and memory in /proc.

A case script warms up, prints `ready`, waits for a line on stdin, runs its timed part and
prints one JSON line. Between `ready` and the go-ahead the harness may wait for the
machine (e.g. a Prefect server) to go idle, so that no one's leftovers are timed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.model import CaseResult

CASE_TIMEOUT_S = 3600.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class CaseFailed(Exception):
    """A case script exited badly or printed no figures; the message ends with its stderr."""


def run_case(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    before_timing: Callable[[], None] | None = None,
    timeout_s: float = CASE_TIMEOUT_S,
) -> CaseResult:
    """Run one repetition of a case script and return what it measured."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=dict(env) if env is not None else None,
        )
        assert process.stdin is not None and process.stdout is not None
        # Reading stdout blocks; a case that hangs is killed, which ends the read.
        watchdog = threading.Timer(timeout_s, process.kill)
        watchdog.start()
        try:
            lines = []
            for line in process.stdout:
                lines.append(line.strip())
                if line.strip() == "ready":
                    if before_timing is not None:
                        before_timing()
                    process.stdin.write("go\n")
                    process.stdin.flush()
            process.stdin.close()
            code = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        errors = stderr.read()
    result = _last_json(lines)
    if code != 0 or result is None:
        tail = "\n".join(errors.strip().splitlines()[-5:])
        raise CaseFailed(f"{Path(argv[1]).name} {' '.join(argv[2:])} exited {code}:\n{tail}")
    return result


def _last_json(lines: list[str]) -> CaseResult | None:
    for line in reversed(lines):
        if line.startswith("{"):
            data = json.loads(line)
            return CaseResult(figures=data.get("figures", {}), info=data.get("info", {}))
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and every descendant still alive."""
    total = 0.0
    for child in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def wait_idle(
    pid: int, *, busy_below: float = 0.05, window_s: float = 1.0, timeout_s: float = 300.0
) -> float:
    """Wait until the process tree uses under `busy_below` of a core over a window.

    Returns the seconds waited; gives up quietly after `timeout_s`.
    """
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout_s:
        time.sleep(window_s)
        after = cpu_seconds(pid)
        if (after - before) / window_s < busy_below:
            break
        before = after
    return time.monotonic() - started


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found
