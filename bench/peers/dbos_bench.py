"""DBOS Transact running the bench's workflows in its own idiom; prints one JSON line.

Run by bench/run.py with the peers virtualenv's Python:

    dbos_bench.py chain|fanout --size N --db URL
    dbos_bench.py seed --size N --db URL      # a finished N-step workflow to read back
    dbos_bench.py read --workflow-id ID --db URL
    dbos_bench.py drop --db URL               # drop a PostgreSQL database it created

Each step is a `@DBOS.step` returning a small dict; the chain passes each output to the
next step, the fan-out runs its steps concurrently (`asyncio.gather` in an async workflow,
DBOS's in-process way to run steps in parallel) and then one join step. A PostgreSQL URL
names a database this script creates fresh (and drops at the end unless it is seeding).

Protocol shared with the other case scripts: after the warm-up it prints `ready`, waits
for a line on stdin, runs the timed part and prints `{"figures": {...}, "info": {...}}`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbos import DBOS, DBOSConfig


@DBOS.step()
def chain_step(previous: dict[str, int]) -> dict[str, int]:
    return {"i": previous["i"] + 1}


@DBOS.workflow()
def chain(size: int) -> dict[str, int]:
    value = {"i": 0}
    for _ in range(size):
        value = chain_step(value)
    return value


@DBOS.step()
async def leaf(index: int) -> dict[str, int]:
    return {"i": index}


@DBOS.step()
async def join(values: list[dict[str, int]]) -> dict[str, int]:
    return {"n": len(values)}


@DBOS.workflow()
async def fanout(size: int) -> dict[str, int]:
    values = await asyncio.gather(*(leaf(i) for i in range(size)))
    return await join(list(values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["chain", "fanout", "seed", "read", "drop"])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--warmup-size", type=int, default=10)
    parser.add_argument("--db", required=True, help="sqlite:///file or postgresql://...")
    parser.add_argument("--workflow-id", default="")
    parser.add_argument("--fresh", action="store_true", help="create the PostgreSQL db first")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL db at the end")
    args = parser.parse_args()
    if args.scenario == "drop":
        _postgres_admin(args.db, "DROP")
        return
    if args.fresh:
        _postgres_admin(args.db, "CREATE")
    config: DBOSConfig = {"name": "stepline-bench", "system_database_url": args.db}
    DBOS(config=config)
    DBOS.launch()
    try:
        result = _scenario(args)
    finally:
        DBOS.destroy()
        if args.drop:
            _postgres_admin(args.db, "DROP")
    # Reading back, DBOS's memory is the reading process's own (it is a library).
    where = "figures" if args.scenario == "read" else "info"
    result.setdefault(where, {})["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result), flush=True)


def _scenario(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "seed":
        started = time.perf_counter()
        handle = DBOS.start_workflow(fanout, args.size - 1)
        handle.get_result()
        elapsed = time.perf_counter() - started
        return {"figures": {}, "info": {"workflow_id": handle.workflow_id, "seed_s": elapsed}}
    if args.scenario == "read":
        _read(args.workflow_id, limit=100)  # warm-up: connections and caches
        _handshake()
        return _timed_read(args.workflow_id)
    workflow = chain if args.scenario == "chain" else fanout
    _run(workflow, args.warmup_size)
    _handshake()
    started = time.perf_counter()
    _run(workflow, args.size)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if args.scenario == "chain":
        return {"figures": {"per_step_ms": elapsed_ms / args.size}, "info": {"run_ms": elapsed_ms}}
    return {"figures": {"wall_ms": elapsed_ms}, "info": {}}


def _run(workflow: Any, size: int) -> None:
    output = workflow(size)
    if asyncio.iscoroutine(output):
        output = asyncio.run(output)
    expected = {"i": size} if workflow is chain else {"n": size}
    if output != expected:
        raise SystemExit(f"unexpected output {output!r}, wanted {expected!r}")


def _read(workflow_id: str, *, limit: int | None) -> int:
    steps = DBOS.list_workflow_steps(workflow_id, load_output=limit is None, limit=limit)
    return len(steps)


def _timed_read(workflow_id: str) -> dict[str, Any]:
    pages = []
    for _ in range(20):
        started = time.perf_counter()
        count = _read(workflow_id, limit=100)
        pages.append((time.perf_counter() - started) * 1000)
        if count != 100:
            raise SystemExit(f"first page held {count} steps, not 100")
    started = time.perf_counter()
    total = _read(workflow_id, limit=None)
    whole_s = time.perf_counter() - started
    pages.sort()
    return {
        "figures": {"first_page_ms": pages[len(pages) // 2], "steps_per_s": total / whole_s},
        "info": {"steps_read": total},
    }


def _handshake() -> None:
    gc.collect()  # the warm-up's garbage is not the timed run's to collect
    print("ready", flush=True)
    sys.stdin.readline()


def _postgres_admin(url: str, verb: str) -> None:
    """CREATE or DROP the database that `url` names, from the server's `postgres` database."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if verb == "DROP":
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
