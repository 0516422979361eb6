"""Opening everything a stepline process runs on, from its settings, in one place.

`open_runtime(settings)` opens the store (migrated), the organizations' secrets vault,
the service verbs' context and, unless told not to, an engine (with its node services:
the HTTP client, the code sandbox, the model clients) and a worker pool; and closes them
in reverse. `stepline serve` (the API's lifespan), `stepline worker` and the local
`stepline run` all start here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from stepline.documents import DocumentLimits
from stepline.engine import Engine, NullObserver, RunObserver
from stepline.engine.services import open_node_services
from stepline.files.library import open_file_library
from stepline.nodes.registry import NodeRegistry, default_registry
from stepline.retrieval.library import KnowledgeLibrary
from stepline.secrets.cipher import load_cipher
from stepline.secrets.source import EnvironmentSecrets, SecretSource
from stepline.secrets.vault import Vault
from stepline.service.context import ServiceContext
from stepline.settings import Settings
from stepline.store import Store
from stepline.store.notifications import listen_for_queued_runs
from stepline.worker import Worker, WorkerPool
from stepline.worker.worker import make_worker_id

DEFAULT_POLL_S = {"sqlite": 0.5, "postgresql": 5.0}
"""An idle worker's poll: on PostgreSQL only a fallback to LISTEN/NOTIFY (and how soon a
run whose lease expired is found)."""


@dataclass
class Runtime:
    settings: Settings
    store: Store
    registry: NodeRegistry
    vault: Vault
    """The organizations' secrets, with the key of `settings` (opened on first need)."""
    service: ServiceContext
    """What the verbs of `stepline.service` work with."""
    pool: WorkerPool | None = None
    """The worker pool (None when opened without a worker); `serve_workers` runs it."""

    @property
    def worker(self) -> Worker:
        if self.pool is None:
            raise RuntimeError("this runtime was opened without a worker")
        return self.pool.worker

    async def work(self, stop: asyncio.Event, *, grace_s: float = 0.0) -> None:
        """Run the worker pool until `stop` is set, then drain it (`WorkerPool.serve`). On
        PostgreSQL, idle loops wake on LISTEN/NOTIFY as runs are queued by any process."""
        if self.pool is None:
            raise RuntimeError("this runtime was opened without a worker")
        listening: asyncio.Task[None] | None = None
        if self.store.dialect == "postgresql":
            url = self.settings.resolved_database_url()
            listening = asyncio.create_task(
                listen_for_queued_runs(url, self.pool.wake, stop), name="stepline-listen"
            )
        try:
            await self.pool.serve(stop, grace_s=grace_s)
        finally:
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)

    @asynccontextmanager
    async def serve_workers(self) -> AsyncIterator[None]:
        """The worker pool's claim loops, running in this process until the block ends."""
        if self.pool is None:
            yield
            return
        stop = asyncio.Event()
        serving = asyncio.create_task(self.work(stop), name="stepline-worker-pool")
        try:
            yield
        finally:
            stop.set()
            await serving


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    worker: bool = True,
    registry: NodeRegistry | None = None,
    observer: RunObserver | None = None,
    environment_secrets: Mapping[str, str] | None = None,
    worker_name: str | None = None,
    warm_sandbox: bool = True,
) -> AsyncIterator[Runtime]:
    """The runtime of `settings`, open for the block.

    With `worker`, an engine and a worker pool of `settings.worker_concurrency` claim
    loops (not yet running: see `Runtime.serve_workers`), whose runs report to `observer`.
    With `environment_secrets` (the local CLI's environment), secrets set there as
    `STEPLINE_SECRET_<NAME>` come first, before the database's. `worker_name` begins
    the worker's id (default: the host's name). Without `warm_sandbox`, the code sandbox
    starts on the first code step rather than with the runtime.
    """
    registry = registry or default_registry()
    store = await Store.connect(settings.resolved_database_url(), home=settings.home)
    try:
        await store.upgrade()
        vault = Vault(store.secrets, lambda create: load_cipher(settings, create=create))
        secrets: SecretSource = vault
        if environment_secrets is not None:
            secrets = EnvironmentSecrets(environment_secrets, fallback=vault)
        limits = DocumentLimits.of(settings)
        files = open_file_library(settings, store)
        service = ServiceContext(
            store=store,
            kinds=registry,
            limits=limits,
            secrets=secrets,
            files=files,
        )
        # The collections' library adds files from the same storage.
        service.knowledge = KnowledgeLibrary(store, files)
        runtime = Runtime(settings, store, registry, vault, service)
        if not worker:
            yield runtime
            return
        async with open_node_services(
            settings, files=files.storage, warm_sandbox=warm_sandbox
        ) as services:
            engine = Engine(
                store=store,
                registry=registry,
                services=services,
                observer=observer or NullObserver(),
                lease_s=settings.lease_s,
                secrets=secrets,
                limits=limits,
            )
            runtime.pool = WorkerPool(
                Worker(engine, lease_s=settings.lease_s, worker_id=make_worker_id(worker_name)),
                concurrency=settings.worker_concurrency,
                poll_s=settings.worker_poll_s or DEFAULT_POLL_S[store.dialect],
            )
            service.wake_workers = runtime.pool.wake
            service.cancel_local = runtime.pool.worker.cancel
            yield runtime
    finally:
        await store.close()
