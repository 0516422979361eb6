"""HTTP load with wrk (Debian package `wrk`): throughput and latency percentiles.

wrk is a C load generator with an event loop per thread; it is light enough to share the
2-core machine with the server it loads, unlike a Python one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping

WRK_MISSING = "wrk is not installed: `apt-get install wrk` (Debian package)"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class LoadFailed(Exception):
    """wrk is missing, failed, or saw errors or non-2xx answers."""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    url: str, *, clients: int, seconds: float, headers: Mapping[str, str], threads: int = 2
) -> dict[str, float]:
    """requests_per_s, p50_ms and p99_ms of GET `url` under `clients` open connections,
    and socket_errors (connect, read, write errors and timeouts; wrk's timeout is 2 s)."""
    if not wrk_available():
        raise LoadFailed(WRK_MISSING)
    argv = ["wrk", f"-t{min(threads, clients)}", f"-c{clients}", f"-d{max(seconds, 1):g}s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LoadFailed(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> dict[str, float]:
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        raise LoadFailed(f"{bad.group(1)} answers were not 2xx:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not (rate and p50 and p99):
        raise LoadFailed(f"could not read wrk's report:\n{output}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "socket_errors": float(sum(int(n) for n in errors.groups())) if errors else 0.0,
        "requests_per_s": float(rate.group(1)),
        "p50_ms": float(p50.group(1)) * _UNITS[p50.group(2)],
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
    }
