"""Prefect 3 running the bench's workflows in its own idiom; prints one JSON line.

Run by bench/run.py with the peers virtualenv's Python, PREFECT_API_URL pointing at a
Prefect server that the harness started (see bench/harness/prefect_server.py):

    prefect_bench.py chain|fanout --size N
    prefect_bench.py seed --size N            # a finished N-task flow run to read back
    prefect_bench.py read --flow-run-id ID --size N

Each step is a `@task` returning a small dict; the chain calls its tasks one after the
other, passing each output on, the fan-out maps one task over N inputs (Prefect's thread
pool task runner) and joins the futures in one more task.

Protocol shared with the other case scripts: after the warm-up it prints `ready`, waits
for a line on stdin (the harness lets the server go idle first), runs the timed part and
prints `{"figures": {...}, "info": {...}}`. Prefect's server records task runs from
events after the flow returns, so the script also reports how long after the flow ended
every task run became visible through the API (`visible_after_ms`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from typing import Any
from uuid import UUID

import httpx
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import TaskRunSort
from prefect.runtime import flow_run

PAGE = 100
MAX_PAGE = 200  # Prefect's server refuses larger pages (PREFECT_SERVER_API_DEFAULT_LIMIT)
SEED_CHUNK = 1000


@task
def chain_step(previous: dict[str, int]) -> dict[str, int]:
    return {"i": previous["i"] + 1}


@flow
def chain(size: int) -> dict[str, Any]:
    value = {"i": 0}
    for _ in range(size):
        value = chain_step(value)
    return {"output": value, "flow_run_id": str(flow_run.get_id())}


@task
def leaf(index: int) -> dict[str, int]:
    return {"i": index}


@task
def join(values: list[dict[str, int]]) -> dict[str, int]:
    return {"n": len(values)}


@flow
def fanout(size: int) -> dict[str, Any]:
    futures = leaf.map(range(size))
    return {"output": join(futures.result()), "flow_run_id": str(flow_run.get_id())}


@flow
def paced_fanout(size: int) -> dict[str, Any]:
    """The fan-out for seeding a big run, mapped in chunks with a pause for the server.

    Prefect's server (in-memory messaging, its default) drops events once 10,000 wait in
    a subscription queue ("Subscription queue is full, dropping message"): a 10,000-task
    map at once loses task runs for good. Each chunk waits until the server shows it.
    """
    run_id = str(flow_run.get_id())
    values: list[dict[str, int]] = []
    for start in range(0, size, SEED_CHUNK):
        values += leaf.map(range(start, min(size, start + SEED_CHUNK))).result()
        _wait_visible(run_id, len(values), timeout_s=1800)
    return {"output": join(values), "flow_run_id": run_id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["chain", "fanout", "seed", "read"])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--warmup-size", type=int, default=10)
    parser.add_argument("--flow-run-id", default="")
    args = parser.parse_args()
    result = _scenario(args)
    result.setdefault("info", {})["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result), flush=True)


def _scenario(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "seed":
        started = time.perf_counter()
        outcome = paced_fanout(args.size - 1)
        run_id = outcome["flow_run_id"]
        _wait_visible(run_id, args.size, timeout_s=3600)
        elapsed = time.perf_counter() - started
        return {"figures": {}, "info": {"flow_run_id": run_id, "seed_s": elapsed}}
    if args.scenario == "read":
        _first_page(args.flow_run_id)  # warm-up: the client's connection and imports
        _handshake()
        return _timed_read(args.flow_run_id, args.size)
    workflow = chain if args.scenario == "chain" else fanout
    _run(workflow, args.warmup_size)
    _handshake()
    started = time.perf_counter()
    outcome = _run(workflow, args.size)
    elapsed_ms = (time.perf_counter() - started) * 1000
    steps = args.size if workflow is chain else args.size + 1
    visible_ms = _wait_visible(outcome["flow_run_id"], steps, timeout_s=600) * 1000
    info = {"run_ms": elapsed_ms, "visible_after_ms": visible_ms}
    if args.scenario == "chain":
        return {"figures": {"per_step_ms": elapsed_ms / args.size}, "info": info}
    return {"figures": {"wall_ms": elapsed_ms}, "info": info}


def _run(workflow: Any, size: int) -> dict[str, Any]:
    outcome: dict[str, Any] = workflow(size)
    expected = {"i": size} if workflow is chain else {"n": size}
    if outcome["output"] != expected:
        raise SystemExit(f"unexpected output {outcome['output']!r}, wanted {expected!r}")
    return outcome


def _run_filter(flow_run_id: str) -> FlowRunFilter:
    return FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))


def _first_page(flow_run_id: str) -> int:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=_run_filter(flow_run_id),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=PAGE,
        )
    return len(runs)


def _read_all(flow_run_id: str) -> int:
    total = 0
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=_run_filter(flow_run_id),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=MAX_PAGE,
                offset=total,
            )
            total += len(runs)
            if len(runs) < MAX_PAGE:
                return total


def _timed_read(flow_run_id: str, size: int) -> dict[str, Any]:
    pages = []
    for _ in range(20):
        started = time.perf_counter()
        count = _first_page(flow_run_id)
        pages.append((time.perf_counter() - started) * 1000)
        if count != PAGE:
            raise SystemExit(f"first page held {count} task runs, not {PAGE}")
    started = time.perf_counter()
    total = _read_all(flow_run_id)
    whole_s = time.perf_counter() - started
    if total != size:
        raise SystemExit(f"read {total} task runs, the flow run has {size}")
    pages.sort()
    return {
        "figures": {"first_page_ms": pages[len(pages) // 2], "steps_per_s": total / whole_s},
        "info": {"steps_read": total},
    }


def _wait_visible(flow_run_id: str, steps: int, *, timeout_s: float) -> float:
    """Seconds until the server reports all `steps` task runs of the flow run."""
    started = time.perf_counter()
    url = os.environ["PREFECT_API_URL"].rstrip("/") + "/task_runs/count"
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
    with httpx.Client(timeout=30) as http:
        while True:
            count = http.post(url, json=body).json()
            if count >= steps:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                raise SystemExit(f"only {count} of {steps} task runs visible after {timeout_s} s")
            time.sleep(0.05)


def _handshake() -> None:
    gc.collect()  # the warm-up's garbage is not the timed run's to collect
    print("ready", flush=True)
    sys.stdin.readline()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
