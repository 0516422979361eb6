"""Put a finished run of `--size` steps into a stepline home for the read scenarios.

    stepline_seed.py --home DIR --size N

Runs a real workflow through the engine (N - 1 independent reshape steps and one join,
the quickest way to N steps on record) into DIR/stepline.db, the file `stepline serve`
opens with STEPLINE_HOME=DIR, and mints a read-scoped API key for the bench's requests.
Prints one JSON line: workflow_id, run_id, api_key, steps, seed_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import stepline_workflows as workflows

from stepline.documents import DocumentLimits
from stepline.engine import Engine
from stepline.engine.services import open_node_services
from stepline.nodes.registry import default_registry
from stepline.records import RunStatus
from stepline.service import Caller, ServiceContext, submit_run
from stepline.settings import Settings
from stepline.store import Store
from stepline.worker import Worker


async def seed(home: Path, size: int) -> dict[str, Any]:
    started = time.perf_counter()
    store = await Store.connect(f"sqlite+aiosqlite:///{home / 'stepline.db'}")
    try:
        await store.upgrade()
        org = await store.organizations.ensure()
        registry = default_registry()
        definition = workflows.fanout(size - 1)
        service = ServiceContext(store=store, kinds=registry, limits=DocumentLimits())
        submission = await submit_run(service, Caller(org), definition, {})
        async with open_node_services(Settings(home=home)) as services:
            engine = Engine(store, registry, services=services)
            run = await Worker(engine, lease_s=120).claim_and_execute(submission.run.id)
        if run is None or run.status is not RunStatus.completed:
            raise SystemExit(f"the seed run did not complete: {run!r}")
        key = await store.keys.create(org, name="bench", scopes=["read"])
    finally:
        await store.close()
    return {
        "workflow_id": str(submission.saved.workflow.id),
        "run_id": str(run.id),
        "api_key": key.secret,
        "steps": size,
        "seed_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"figures": {}, "info": asyncio.run(seed(args.home, args.size))}))


if __name__ == "__main__":
    main()
