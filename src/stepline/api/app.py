"""The FastAPI application: the native API under /v1, with its store and embedded worker.

`create_app()` builds it; its lifespan opens the store (migrating it), and unless told
not to, runs a worker pool in the same process, so that `stepline serve` alone executes
what it is asked to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI

from stepline import __version__
from stepline.api.errors import install_error_handlers
from stepline.api.middleware import RequestContextMiddleware
from stepline.api.models import Health
from stepline.api.openapi import install_openapi
from stepline.api.responses import json_response
from stepline.api.routes import control, keys, runs, secrets, workflows
from stepline.api.state import AppState
from stepline.engine import Engine, NullObserver
from stepline.engine.services import open_node_services
from stepline.nodes.registry import NodeRegistry, default_registry
from stepline.settings import Settings, get_settings
from stepline.store import Store
from stepline.worker import Worker, WorkerPool


def create_app(
    settings: Settings | None = None,
    *,
    worker: bool = True,
    registry: NodeRegistry | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """The API on the configured database.

    With `public_url` (as `stepline serve` gives), the first start on an empty database
    creates the default organization and an admin key, prints the key once to stderr and
    saves it, with that URL, where the CLI and SDK look for credentials.
    """
    settings = settings or get_settings()
    registry = registry or default_registry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await Store.connect(settings.resolved_database_url(), home=settings.home)
        try:
            await store.upgrade()
            if public_url is not None:
                await _first_start(store, settings, public_url)
            state = AppState(store=store, settings=settings, registry=registry)
            app.state.stepline = state
            if not worker:
                yield
                return
            async with open_node_services(settings) as services:
                engine = Engine(
                    store=store,
                    registry=registry,
                    services=services,
                    observer=NullObserver(),
                    lease_s=settings.lease_s,
                    secrets=state.vault,
                    limits=state.limits,
                )
                pool = WorkerPool(
                    Worker(engine, lease_s=settings.lease_s),
                    concurrency=settings.worker_concurrency,
                )
                state.wake_workers = pool.wake
                state.cancel_local = pool.worker.cancel
                stop = asyncio.Event()
                serving = asyncio.create_task(pool.serve(stop), name="stepline-worker-pool")
                try:
                    yield
                finally:
                    stop.set()
                    await serving
        finally:
            await store.close()

    app = FastAPI(
        title="stepline",
        version=__version__,
        summary="A workflow engine in which every step of every run is on the record.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    for module in (workflows, runs, keys, secrets):
        app.include_router(module.router)
    for router in (control.reviews_router, control.runs_router):
        app.include_router(router)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> object:
        state: AppState = app.state.stepline
        return json_response(
            Health(version=__version__, database=state.store.dialect, worker=worker)
        )

    install_openapi(app)
    return app


async def _first_start(store: Store, settings: Settings, public_url: str) -> None:
    from stepline.bootstrap import first_start

    secret = await first_start(store, settings, public_url)
    if secret is not None:
        # Not a log line: the key must stand alone on its line, for people and scripts.
        sys.stderr.write(
            "stepline: first start on an empty database: created organization 'default' and "
            f"an admin API key (saved to {settings.home / 'credentials'}); it is shown only "
            f"once:\n{secret}\n"
        )
        sys.stderr.flush()
