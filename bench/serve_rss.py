"""Peak RSS of `stepline serve` through a big `for_each` run, executed and read back.

    python bench/serve_rss.py [--items 10000] [--page 100] [--reps 1]

Starts `stepline serve` (API and embedded worker, on SQLite, in a fresh home) and, as a
client would: creates a workflow whose `for_each` runs a `reshape` body once per item of a
`--items`-long list, starts a run, waits for it to finish, then reads every step back over
the API (`GET .../steps`, `--page` steps a page, with inputs and outputs, following
`next_cursor`). Reports the server's peak resident set (VmHWM in /proc) after the run
alone and after the read-back, beside its resident set once idle after start-up (the
baseline, measured in the same repetition). Issue 22's target: peak under 200 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.procs import free_port, peak_rss_mb

TARGET_MB = 200.0
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 900.0


def definition(items: int) -> dict[str, Any]:
    """A `for_each` over `items` numbers whose body reshapes each one (items + 1 steps)."""
    return {
        "name": f"bench-rss-for-each-{items}",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": list(range(items))},
                "body": {
                    "nodes": [
                        {
                            "id": "double",
                            "type": "reshape",
                            "config": {
                                "output": {"n": "{{ loop.item * 2 }}", "at": "{{ loop.index }}"}
                            },
                        }
                    ],
                    "output": "{{ nodes.double.output.n }}",
                },
            }
        ],
        "edges": [],
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Serve:
    """`stepline serve` on a fresh home; `key` is the admin key its first start printed."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.log_path = home / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
        env.update(STEPLINE_HOME=str(home), STEPLINE_LOG_LEVEL="WARNING")
        stepline = str(Path(sys.executable).parent / "stepline")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [stepline, "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"stepline serve exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("stepline serve did not answer /healthz")
            time.sleep(0.05)
        printed = [x for x in self.log_path.read_text().splitlines() if x.startswith("stp_")]
        if not printed:
            self.stop()
            raise RuntimeError("stepline serve printed no admin key on its first start")
        self.key = printed[0].strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def measure(items: int, page: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="stepline-rss-") as home:
        server = Serve(Path(home))
        try:
            pid = server.process.pid
            headers = {"Authorization": f"Bearer {server.key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
                time.sleep(1.0)  # let start-up settle (the worker's first poll, the pool)
                idle = rss_mb(pid)
                created = http.post("/v1/workflows", json=definition(items))
                created.raise_for_status()
                workflow_id = created.json()["id"]
                started_at = time.perf_counter()
                started = http.post(f"/v1/workflows/{workflow_id}/runs", json={"inputs": {}})
                started.raise_for_status()
                run_path = f"/v1/workflows/{workflow_id}/runs/{started.json()['id']}"
                run = _wait_finished(http, run_path)
                run_s = time.perf_counter() - started_at
                if run["status"] != "completed":
                    raise RuntimeError(f"the run ended {run['status']}: {run.get('error')}")
                after_run = peak_rss_mb(pid)
                read_at = time.perf_counter()
                count = _read_all(http, f"{run_path}/steps", page)
                read_s = time.perf_counter() - read_at
                if count != items + 1:
                    raise RuntimeError(f"read {count} steps back, expected {items + 1}")
                return {
                    "idle_mb": idle,
                    "after_run_mb": after_run,
                    "peak_mb": peak_rss_mb(pid),
                    "run_s": run_s,
                    "read_s": read_s,
                }
        finally:
            server.stop()


def _wait_finished(http: httpx.Client, run_path: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run: dict[str, Any] = http.get(run_path).raise_for_status().json()
        if run["status"] in {"completed", "failed", "cancelled"}:
            return run
        time.sleep(0.25)
    raise RuntimeError(f"the run did not finish in {RUN_TIMEOUT_S} s")


def _read_all(http: httpx.Client, steps_path: str, page: int) -> int:
    """Every step, page by page as a client reads them (inputs and outputs included)."""
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": page}
        if cursor is not None:
            params["after"] = cursor
        body = http.get(steps_path, params=params).raise_for_status().json()
        count += len(body["data"])
        cursor = body.get("next_cursor")
        if not cursor:
            return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="for_each iterations")
    parser.add_argument("--page", type=int, default=100, help="steps per page read back")
    parser.add_argument("--reps", type=int, default=1, help="fresh servers, one after another")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = []
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        results.append(measure(args.items, args.page))

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    peak, idle = median("peak_mb"), median("idle_mb")
    verdict = "met" if peak < TARGET_MB else "MISSED"
    print(
        f"`stepline serve` on SQLite, for_each of {args.items} items ({args.items + 1} steps), "
        f"read back {args.page} a page; {args.reps} repetition(s), load average {load:.2f}"
    )
    print()
    print("| measure | median (MB) | min-max | vs idle | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| RSS idle after start-up | {idle:.0f} | {_spread(results, 'idle_mb')} | baseline | |")
    print(
        f"| peak after the run | {median('after_run_mb'):.0f} "
        f"| {_spread(results, 'after_run_mb')} | {median('after_run_mb') / idle:.2f}x | |"
    )
    print(
        f"| peak after reading every step back | {peak:.0f} | {_spread(results, 'peak_mb')} "
        f"| {peak / idle:.2f}x | < {TARGET_MB:.0f} MB: {verdict} |"
    )
    print()
    print(f"The run took {median('run_s'):.1f} s, the read-back {median('read_s'):.1f} s.")


def _spread(results: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in results]
    return f"{min(values):.0f}-{max(values):.0f}"


if __name__ == "__main__":
    main()
