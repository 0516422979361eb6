"""chain, fanout and code scenarios on stepline, executed in-process on embedded SQLite.

    stepline_engine.py chain|fanout|code --size N [--warmup-size W]

In a fresh temporary home: open the store, run a warm-up of the same kind (imports,
template cache, sandbox pool warm, SQLite pages cached), save the timed workflow (a
deployed workflow; saving it is not a step), print `ready` and wait for a line on stdin,
then time queueing the run + a worker claiming and executing it to the end. Prints one
JSON line: the figures and what the store's writer did (operations and commits).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import stepline_workflows as workflows

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunStatus
from stepline.service import Caller, ServiceContext, save_workflow, submit_run
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker

DEFINITIONS = {"chain": workflows.chain, "fanout": workflows.fanout, "code": workflows.code_chain}


async def run_once(
    engine: Engine, org: UUID, kind: str, size: int, definition: dict[str, Any]
) -> None:
    """Queue one run of `definition` (`kind` of `size`) and execute it; check its output."""
    service = ServiceContext(store=engine.store, kinds=engine.registry, limits=engine.limits)
    submission = await submit_run(service, Caller(org), definition, {})
    run = await Worker(engine, lease_s=60).claim_and_execute(submission.run.id)
    if run is None or run.status is not RunStatus.completed:
        raise SystemExit(f"the {kind} run did not complete: {run!r}")
    expected = workflows.expected_output(kind, size)
    if run.output != expected:
        raise SystemExit(f"the {kind} run returned {run.output!r}, not {expected!r}")


async def measure(kind: str, size: int, warmup_size: int, home: Path) -> dict[str, Any]:
    store = await Store.connect(f"sqlite+aiosqlite:///{home / 'stepline.db'}")
    try:
        await store.upgrade()
        org = await store.organizations.ensure()
        registry = default_registry()
        async with open_node_services(Settings(home=home)) as services:
            engine = Engine(store, registry, services=services)
            await run_once(engine, org, kind, warmup_size, DEFINITIONS[kind](warmup_size))
            # The user's definition exists before the run; building it is not timed.
            definition = DEFINITIONS[kind](size)
            service = ServiceContext(store=store, kinds=registry, limits=engine.limits)
            await save_workflow(service, Caller(org), definition)
            await asyncio.to_thread(_handshake)
            writes, commits = store.writer.operations, store.writer.transactions
            started = time.perf_counter()
            await run_once(engine, org, kind, size, definition)
            elapsed_ms = (time.perf_counter() - started) * 1000
            writes = store.writer.operations - writes
            commits = store.writer.transactions - commits
    finally:
        await store.close()
    steps = workflows.step_count(kind, size)
    info = {
        "run_ms": elapsed_ms,
        "steps": steps,
        "writes_per_step": writes / steps,
        "commits_per_step": commits / steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if kind == "fanout":
        return {"figures": {"wall_ms": elapsed_ms}, "info": info}
    return {"figures": {"per_step_ms": elapsed_ms / size}, "info": info}


def _handshake() -> None:
    gc.collect()  # the warm-up's garbage is not the timed run's to collect
    print("ready", flush=True)
    sys.stdin.readline()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(DEFINITIONS))
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--warmup-size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepline-bench-") as home:
        result = asyncio.run(measure(args.kind, args.size, args.warmup_size, Path(home)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
