"""The warm path in one process: chain-100 runs back to back, per step, wall and CPU.

    python bench/warm_path.py [--runs 40] [--warmup 3] [--size 100]
    PYTHONPATH=/path/to/other/src python bench/warm_path.py   # the same, another checkout

Each run is what chain-100 times (bench/cases/stepline_engine.py): `submit_run` of an
unchanged workflow file, then a `Worker` claims and executes it, on embedded SQLite in a
temporary home. Prints the median and fastest run per step, in wall time and in the
process's CPU time (all threads), and the commits per step. CPU time moves less than wall
time on a shared machine, which is what makes it useful for telling two versions apart:
run them alternately, several times each (bench/README.md, "Warm path").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "cases"))

import stepline_workflows as workflows

from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunStatus
from stepline.service import Caller, ServiceContext, save_workflow, submit_run
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker


async def measure(runs: int, warmup: int, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="stepline-warm-") as folder:
        home = Path(folder)
        store = await Store.connect(f"sqlite+aiosqlite:///{home / 'stepline.db'}")
        try:
            await store.upgrade()
            org = await store.organizations.ensure()
            registry = default_registry()
            async with open_node_services(Settings(home=home)) as services:
                engine = Engine(store, registry, services=services)
                service = ServiceContext(store=store, kinds=registry, limits=engine.limits)
                definition = workflows.chain(size)
                await save_workflow(service, Caller(org), definition)
                expected = workflows.expected_output("chain", size)

                async def once() -> None:
                    submission = await submit_run(service, Caller(org), definition, {})
                    run = await Worker(engine, lease_s=60).claim_and_execute(submission.run.id)
                    if run is None or run.status is not RunStatus.completed:
                        raise SystemExit(f"the chain did not complete: {run!r}")
                    if run.output != expected:
                        raise SystemExit(f"the chain returned {run.output!r}")

                for _ in range(warmup):
                    await once()
                gc.collect()
                walls: list[float] = []
                cpus: list[float] = []
                commits = store.writer.transactions
                for _ in range(runs):
                    wall, cpu = time.perf_counter(), time.process_time()
                    await once()
                    walls.append((time.perf_counter() - wall) * 1000 / size)
                    cpus.append((time.process_time() - cpu) * 1000 / size)
                commits = store.writer.transactions - commits
        finally:
            await store.close()
    return {
        "wall_ms_median": statistics.median(walls),
        "wall_ms_min": min(walls),
        "cpu_ms_median": statistics.median(cpus),
        "cpu_ms_min": min(cpus),
        "commits_per_step": commits / (runs * size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.runs, args.warmup, args.size))
    print(json.dumps({name: round(value, 4) for name, value in figures.items()}))


if __name__ == "__main__":
    main()
