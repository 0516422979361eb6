"""The worker-fleet bench: a batch of runs on embedded SQLite, then on PostgreSQL with 1, 2
and 4 `stepline worker` processes, and (with --peers) DBOS Transact on PostgreSQL.

    python bench/fleet.py                 # 200 runs a batch, 3 repetitions
    python bench/fleet.py --peers         # + DBOS on a Queue (its virtualenv, bench/.peers-venv)
    python bench/fleet.py --quick         # 12 runs, 1 repetition, no peers (smoke, ~35 s)

Every repetition starts fresh processes on a fresh database (a new SQLite home, a new
PostgreSQL database), makes a warm-up batch, then times a batch of B runs of a ten-step
workflow with a parallel section, from the first POST to the last run's `completed_at`.
Each run's output is checked. One markdown table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness.fleet_processes import Processes, postgres_database
from harness.peers_venv import ensure_peers_venv
from harness.plan import BENCH, log
from harness.procs import free_port
from harness.report import number

STEPS_PER_RUN = 10
WORKER_CONCURRENCY = 4
"""Runs each worker process executes at once (`--concurrency`; the embedded one too)."""
START_TIMEOUT_S = 60.0
SETTLE_POLL_S = 0.5
"""How often the bench asks whether the batch is done: the end comes from the run records,
so polling faster would only take the API's CPU (each poll is two requests)."""
BASELINE = "sqlite-embedded"


@dataclass(frozen=True)
class Config:
    """One system the batch runs on: `workers` None is `stepline serve` on SQLite."""

    name: str
    workers: int | None = None
    peer: bool = False


CONFIGS = (
    Config(BASELINE),
    Config("postgres-1-worker", workers=1),
    Config("postgres-2-workers", workers=2),
    Config("postgres-4-workers", workers=4),
)
DBOS = Config("dbos-postgres", peer=True)


@dataclass(frozen=True)
class Figures:
    """One timed batch."""

    steps_per_s: float
    p50_ms: float
    p95_ms: float
    queued_per_s: float
    """How fast the batch's POSTs were answered (8 at a time): the API's side of it."""


METRICS: tuple[tuple[str, Callable[[Figures], float]], ...] = (
    ("throughput (steps/s)", lambda f: f.steps_per_s),
    ("run latency p50 (ms)", lambda f: f.p50_ms),
    ("run latency p95 (ms)", lambda f: f.p95_ms),
    ("queueing (runs/s)", lambda f: f.queued_per_s),
)


@dataclass
class Series:
    config: Config
    batches: list[Figures] = field(default_factory=list)
    error: str | None = None


# --- the workflow ---------------------------------------------------------------------------


def workflow() -> dict[str, Any]:
    """Ten reshape steps: `a`, then `b1`..`b4` at once, `c` summing them, then `d`..`g`."""
    nodes = [{"id": "a", "type": "reshape", "config": {"output": {"i": "{{ inputs.n }}"}}}]
    nodes += [
        {
            "id": f"b{k}",
            "type": "reshape",
            "config": {"output": {"i": f"{{{{ nodes.a.output.i + {k} }}}}"}},
        }
        for k in range(1, 5)
    ]
    summed = " + ".join(f"nodes.b{k}.output.i" for k in range(1, 5))
    nodes.append({"id": "c", "type": "reshape", "config": {"output": {"i": f"{{{{ {summed} }}}}"}}})
    chain = "cdefg"
    nodes += [
        {
            "id": y,
            "type": "reshape",
            "config": {"output": {"i": f"{{{{ nodes.{x}.output.i + 1 }}}}"}},
        }
        for x, y in itertools.pairwise(chain)
    ]
    edges = [{"from": "a", "to": f"b{k}"} for k in range(1, 5)]
    edges += [{"from": f"b{k}", "to": "c"} for k in range(1, 5)]
    edges += [{"from": x, "to": y} for x, y in itertools.pairwise(chain)]
    return {"name": "bench-fleet", "nodes": nodes, "edges": edges}


def expected(n: int) -> int:
    """What `g` outputs for input n: (n+1) + ... + (n+4), then four times + 1."""
    return 4 * n + 10 + 4


# --- one repetition -------------------------------------------------------------------------


@dataclass
class Api:
    base_url: str
    client: httpx.Client

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()


def stepline_batch(config: Config, runs: int, warmup: int, workdir: Path) -> Figures:
    """Start the configuration's processes afresh, warm up, time a batch of `runs`."""
    home = Path(tempfile.mkdtemp(prefix=f"{config.name}-", dir=workdir))
    try:
        if config.workers is None:
            env = {"STEPLINE_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY)}
            return _on(config, Processes(home, env), runs, warmup)
        with postgres_database() as url:
            return _on(config, Processes(home, {"STEPLINE_DATABASE_URL": url}), runs, warmup)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _on(config: Config, procs: Processes, runs: int, warmup: int) -> Figures:
    port = free_port()
    serve_args = ["serve", "--port", str(port)]
    if config.workers is not None:
        serve_args.append("--no-worker")
    serve_log = procs.start("serve", *serve_args)
    try:
        api = _connect(procs, port, serve_log)
        with api.client:
            for index in range(config.workers or 0):
                concurrency = str(WORKER_CONCURRENCY)
                procs.start(
                    f"worker-{index}", "worker", "--name", f"w{index}", "--concurrency", concurrency
                )
            _wait_workers(api, procs, config.workers or 0)
            created = api.client.post("/v1/workflows", json=workflow())
            if created.status_code != 201:
                raise RuntimeError(f"creating the workflow: {created.status_code} {created.text}")
            workflow_id = created.json()["id"]
            _batch(api, procs, workflow_id, range(-warmup, 0))
            return _batch(api, procs, workflow_id, range(runs), timed=True)
    except BaseException as exc:
        exc.add_note(procs.logs())
        raise
    finally:
        procs.stop()


def _connect(procs: Processes, port: int, serve_log: Path) -> Api:
    """Wait for /healthz; the admin key is the line the first start printed."""
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        procs.check_alive()
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("stepline serve did not answer /healthz")
        time.sleep(0.05)
    keys = [line.strip() for line in serve_log.read_text().splitlines() if line.startswith("stp_")]
    if not keys:
        raise RuntimeError("stepline serve printed no admin key on its first start")
    headers = {"Authorization": f"Bearer {keys[0]}"}
    return Api(base_url, httpx.Client(base_url=base_url, headers=headers, timeout=60))


def _wait_workers(api: Api, procs: Processes, count: int) -> None:
    """Until `count` workers are registered (start-up is not timed)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while count and len(api.get("/v1/workers")["data"]) < count:
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not register within {START_TIMEOUT_S:g} s")
        time.sleep(0.1)


def _batch(
    api: Api, procs: Processes, workflow_id: str, inputs: range, *, timed: bool = False
) -> Figures:
    """POST one run per input, wait for all, check them; the batch's figures (`timed`:
    and log the CPU time its processes used)."""
    path = f"/v1/workflows/{workflow_id}/runs"

    def start(n: int) -> str:
        answer = api.client.post(path, json={"inputs": {"n": n}})
        if answer.status_code != 202:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:500]}")
        run_id: str = answer.json()["id"]
        return run_id

    cpu_before = procs.cpu_seconds()
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        run_ids = dict(zip(pool.map(start, inputs), inputs, strict=True))
    queued_per_s = len(inputs) / (time.time() - started)
    deadline = time.monotonic() + 60 + len(inputs)
    while (
        api.get(path, status="queued", limit=1)["data"]
        or api.get(path, status="running", limit=1)["data"]
    ):
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the batch of {len(inputs)} runs did not settle")
        time.sleep(SETTLE_POLL_S)
    if timed:  # up to here: the checks below read every run back, which is not the batch's
        spent = {k: v - cpu_before[k] for k, v in procs.cpu_seconds().items()}
        log("  CPU s in the timed batch: " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()))
    return _figures(api, workflow_id, run_ids, started, queued_per_s)


def _figures(
    api: Api, workflow_id: str, run_ids: dict[str, int], started: float, queued_per_s: float
) -> Figures:
    records = [run for run in _all_runs(api, workflow_id) if run["id"] in run_ids]
    if len(records) != len(run_ids):
        raise RuntimeError(f"{len(run_ids)} runs queued, {len(records)} listed")
    latencies = []
    for run in records:
        _check(api, workflow_id, run, run_ids[run["id"]])
        latencies.append((_time(run["completed_at"]) - _time(run["created_at"])) * 1000)
    ended = max(_time(run["completed_at"]) for run in records)
    latencies.sort()
    return Figures(
        steps_per_s=len(records) * STEPS_PER_RUN / (ended - started),
        p50_ms=statistics.median(latencies),
        p95_ms=_percentile(latencies, 0.95),
        queued_per_s=queued_per_s,
    )


def _all_runs(api: Api, workflow_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
        page = api.get(f"/v1/workflows/{workflow_id}/runs", **params)
        found += page["data"]
        after = page.get("next_cursor")
        if not after:
            return found


def _check(api: Api, workflow_id: str, run: dict[str, Any], n: int) -> None:
    """A broken run must not pass for a fast one: completed, ten steps, the right output."""
    where = f"run {run['id']} (n={n})"
    if run["status"] != "completed":
        raise RuntimeError(f"{where} ended {run['status']}: {run.get('error')}")
    if run["finished_steps"] != STEPS_PER_RUN or run["total_steps"] != STEPS_PER_RUN:
        raise RuntimeError(f"{where} finished {run['finished_steps']}/{run['total_steps']} steps")
    data = api.get(f"/v1/workflows/{workflow_id}/runs/{run['id']}/data")
    if data["end_nodes"].get("g") != {"i": expected(n)}:
        raise RuntimeError(f"{where}: g output {data['end_nodes'].get('g')!r}, not {expected(n)}")


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the peer -------------------------------------------------------------------------------


def dbos_batch(python: Path, runs: int, warmup: int) -> Figures:
    """DBOS in its own process and virtualenv, on a database the script creates and drops."""
    name = f"dbos_bench_fleet_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            str(python),
            str(BENCH / "peers" / "dbos_fleet.py"),
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--db",
            f"postgresql://postgres@127.0.0.1:5432/{name}",
        ],
        capture_output=True,
        text=True,
        timeout=600 + 5 * runs,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dbos_fleet.py exited {done.returncode}:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"  CPU s in the timed batch: dbos {found['cpu_s']:.1f}")
    return Figures(found["steps_per_s"], found["p50_ms"], found["p95_ms"], found["queued_per_s"])


# --- the table ------------------------------------------------------------------------------


HEADER = ("configuration", "metric", "median", "min-max", f"ratio to {BASELINE}")


def table(all_series: Sequence[Series]) -> str:
    """One row per configuration and metric; the ratio is median / the baseline's median
    (for throughput above 1 is faster than embedded SQLite, for latency above 1 slower)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    baseline = next((s for s in all_series if s.config.name == BASELINE and s.batches), None)
    failures = []
    for label, metric in METRICS:
        for one in all_series:
            if not one.batches:
                failures.append(f"{one.config.name}: {one.error}")
                lines.append(f"| {one.config.name} | {label} | failed [{len(failures)}] | - | - |")
                continue
            values = [metric(batch) for batch in one.batches]
            median = statistics.median(values)
            if one is baseline:
                ratio = "baseline"
            elif baseline is None:
                ratio = "-"
            else:
                ratio = f"{median / statistics.median(metric(b) for b in baseline.batches):.3g}x"
            spread = f"{number(min(values))}-{number(max(values))}"
            if one.error:
                failures.append(f"{one.config.name}: {one.error}")
                spread += f" (then failed [{len(failures)}])"
            lines.append(f"| {one.config.name} | {label} | {number(median)} | {spread} | {ratio} |")
    if failures:
        lines.append("")
        lines += [f"[{i}] {text}" for i, text in enumerate(dict.fromkeys(failures), 1)]
    return "\n".join(lines)


# --- the command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="runs a batch (default 200)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=8, help="runs of the warm-up batch (default 8)"
    )
    parser.add_argument("--peers", action="store_true", help="add DBOS on PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="12 runs, 1 repetition, no peers")
    args = parser.parse_args(argv)
    if args.quick and args.peers:
        parser.error("--quick runs no peers")
    if args.quick:
        args.runs, args.reps, args.warmup = 12, 1, 2
    if args.runs < 1 or args.reps < 1 or args.warmup < 0:
        parser.error("--runs and --reps must be at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the processes started are stopped, databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configs = list(CONFIGS)
    peers_python = None
    if args.peers:
        peers_python = ensure_peers_venv()
        configs.append(DBOS)
    all_series = [Series(config) for config in configs]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stepline-fleet-") as workdir:
        # Configurations are interleaved (repetition 1 of each, then 2...): a noisy minute
        # hits all of them.
        for rep in range(1, args.reps + 1):
            for one in all_series:
                if one.error:
                    continue
                log(f"{one.config.name}: repetition {rep}/{args.reps}, {args.runs} runs")
                try:
                    if one.config.peer:
                        assert peers_python is not None
                        figures = dbos_batch(peers_python, args.runs, args.warmup)
                    else:
                        figures = stepline_batch(one.config, args.runs, args.warmup, Path(workdir))
                except Exception as exc:  # a failed configuration is reported, not fatal
                    notes = "\n".join(getattr(exc, "__notes__", []))
                    log(f"{one.config.name} failed: {exc}\n{notes}")
                    one.error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    continue
                one.batches.append(figures)
                log(
                    f"  {number(figures.steps_per_s)} steps/s, p50 {number(figures.p50_ms)} ms, "
                    f"p95 {number(figures.p95_ms)} ms; queued {number(figures.queued_per_s)} "
                    "runs/s"
                )
    log(f"done in {time.monotonic() - began:.0f} s; load average {os.getloadavg()}")
    print(table(all_series))
    return 0 if all(one.batches and not one.error for one in all_series) else 1


if __name__ == "__main__":
    sys.exit(main())
