"""DBOS Transact running the fleet bench's batch in its own idiom; prints one JSON line.

Run by bench/fleet.py with the peers virtualenv's Python:

    dbos_fleet.py --runs B --concurrency C --db postgresql://postgres@127.0.0.1:5432/NAME

The database is created fresh and dropped at the end. The workflow is the fleet batch's
ten steps, each a `@DBOS.step` returning a small dict: `a`, then `b1`..`b4` at once
(`asyncio.gather` in an async workflow, DBOS's in-process parallelism), `c` summing them,
then `d`..`g` in a chain. B workflows are enqueued on a DBOS `Queue` whose
`worker_concurrency` is C (like one `stepline worker --concurrency C`), after a warm-up
batch. Timed from the first enqueue to the last workflow's end (its `updated_at` in the
system database); each run's latency is its `updated_at - created_at`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbos import DBOS, DBOSConfig, Queue

STEPS_PER_RUN = 10
POLL_S = 0.05
"""How often the queue looks for work: stepline's workers are woken by NOTIFY instead, and
DBOS's default (1 s) would leave C slots idle most of each second, measuring the poll."""


@DBOS.step()
async def bump(value: dict[str, int], by: int) -> dict[str, int]:
    return {"i": value["i"] + by}


@DBOS.step()
async def total(values: list[dict[str, int]]) -> dict[str, int]:
    return {"i": sum(value["i"] for value in values)}


@DBOS.workflow()
async def ten_steps(n: int) -> dict[str, int]:
    value = await bump({"i": n}, 0)
    parallel = await asyncio.gather(*(bump(value, k) for k in range(1, 5)))
    value = await total(list(parallel))
    for _ in range(4):
        value = await bump(value, 1)
    return value


def expected(n: int) -> dict[str, int]:
    """What `ten_steps(n)` returns: (n+1) + ... + (n+4), then four times + 1."""
    return {"i": 4 * n + 10 + 4}


async def batch(queue: Queue, runs: int, first: int) -> tuple[float, float, list[str]]:
    """Enqueue `runs` workflows and wait for them all: (start time, enqueued per second,
    workflow ids)."""
    started = time.time()
    handles = [await queue.enqueue_async(ten_steps, first + n) for n in range(runs)]
    queued_per_s = runs / (time.time() - started)
    for n, handle in enumerate(handles):
        output = await handle.get_result()
        if output != expected(first + n):
            raise SystemExit(
                f"workflow {handle.workflow_id}: {output!r}, not {expected(first + n)}"
            )
    return started, queued_per_s, [handle.workflow_id for handle in handles]


async def warm_then_timed(
    queue: Queue, warmup: int, runs: int
) -> tuple[float, float, list[str], float]:
    """The timed batch (as `batch`, with this process's CPU seconds, all threads), after a
    warm-up batch."""
    await batch(queue, warmup, -warmup)  # connections, caches, the queue's first polls
    cpu = time.process_time()
    started, queued_per_s, ids = await batch(queue, runs, 0)
    return started, queued_per_s, ids, time.process_time() - cpu


def figures(
    started: float, queued_per_s: float, workflow_ids: list[str], cpu_s: float
) -> dict[str, Any]:
    wanted = set(workflow_ids)
    statuses = [
        s for s in DBOS.list_workflows(workflow_ids=workflow_ids) if s.workflow_id in wanted
    ]
    if len(statuses) != len(wanted) or any(s.status != "SUCCESS" for s in statuses):
        raise SystemExit(f"{len(wanted)} workflows, {len(statuses)} found, not all SUCCESS")
    ended = max(s.updated_at or 0 for s in statuses) / 1000
    latencies = sorted(((s.updated_at or 0) - (s.created_at or 0)) for s in statuses)
    wall_s = ended - started
    return {
        "steps_per_s": len(statuses) * STEPS_PER_RUN / wall_s,
        "p50_ms": statistics.median(latencies),
        "p95_ms": _percentile(latencies, 0.95),
        "queued_per_s": queued_per_s,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--db", required=True, help="postgresql://... (created, then dropped)")
    args = parser.parse_args()
    _postgres_admin(args.db, "CREATE")
    try:
        config: DBOSConfig = {"name": "stepline-fleet-bench", "system_database_url": args.db}
        DBOS(config=config)
        DBOS.launch()
        queue = DBOS.register_queue(
            "fleet", worker_concurrency=args.concurrency, polling_interval_sec=POLL_S
        )
        try:
            timed = asyncio.run(warm_then_timed(queue, args.warmup, args.runs))
            result = figures(*timed)
        finally:
            DBOS.destroy()
    finally:
        _postgres_admin(args.db, "DROP")
    print(json.dumps(result), flush=True)


def _postgres_admin(url: str, verb: str) -> None:
    """CREATE or DROP the database that `url` names, from the server's `postgres` database."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if verb == "CREATE":
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.exit(main())
