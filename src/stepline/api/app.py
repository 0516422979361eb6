"""The FastAPI application: the native API under /v1, with its store and embedded worker.

`create_app()` builds it; its lifespan opens the runtime (`stepline.runtime`: the store,
migrated, and unless told not to, a worker pool running in the same process, so that
`stepline serve` alone executes what it is asked to run).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI

from stepline import __version__
from stepline.api.dialects import mount_dialects
from stepline.api.errors import install_error_handlers
from stepline.api.middleware import RequestContextMiddleware
from stepline.api.models import Health
from stepline.api.openapi import install_openapi
from stepline.api.responses import json_response
from stepline.api.routes import (
    collections,
    control,
    files,
    keys,
    runs,
    secrets,
    steps,
    workers,
    workflows,
)
from stepline.api.routes.steps import list_steps_fast
from stepline.api.state import AppState
from stepline.bootstrap import bootstrap
from stepline.nodes.registry import NodeRegistry, default_registry
from stepline.runtime import open_runtime
from stepline.settings import Settings, get_settings
from stepline.store import Store


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
        async with open_runtime(settings, worker=worker, registry=registry) as runtime:
            if public_url is not None:
                await _first_start(runtime.store, settings, public_url)
            app.state.stepline = AppState(runtime)
            async with runtime.serve_workers():
                yield

    app = FastAPI(
        title="stepline",
        version=__version__,
        summary="A workflow engine in which every step of every run is on the record.",
        lifespan=lifespan,
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        fast_lane=list_steps_fast,
        uploads={files.UPLOAD_PATH: settings.max_file_bytes + files.MULTIPART_OVERHEAD},
    )
    install_error_handlers(app)
    for module in (workflows, runs, steps, keys, secrets, files, collections, workers):
        app.include_router(module.router)
    for router in (control.reviews_router, control.runs_router):
        app.include_router(router)
    mount_dialects(app)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> object:
        state: AppState = app.state.stepline
        return json_response(
            Health(version=__version__, database=state.store.dialect, worker=worker)
        )

    install_openapi(app)
    return app


async def _first_start(store: Store, settings: Settings, public_url: str) -> None:
    made = await bootstrap(store, settings, public_url)
    if made is not None:
        # Not a log line: the key must stand alone on its line, for people and scripts.
        sys.stderr.write(made.announcement(settings.home / "credentials") + made.secret + "\n")
        sys.stderr.flush()
