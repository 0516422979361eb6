"""`stepline serve`, `stepline worker` and `stepline db upgrade`: running stepline."""

from __future__ import annotations

import click

from stepline.cli import local
from stepline.cli.console import note, say
from stepline.cli.failures import fail


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `stepline worker`s apart.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve the REST API (and, unless --no-worker, execute runs in the same process)."""
    import uvicorn

    from stepline.api.app import create_app
    from stepline.api.logs import configure_logging
    from stepline.settings import get_settings

    settings = get_settings()
    local.check_providers()
    configure_logging(settings.log_level)
    api = create_app(settings, worker=not no_worker, public_url=f"http://{host}:{port}")
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)


@click.command()
@click.option("--once", is_flag=True, help="Drain queued and orphaned runs, then exit.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=None,
    help="Runs this worker drives at once. Default: STEPLINE_WORKER_CONCURRENCY.",
)
@click.option(
    "--name",
    default=None,
    help="Begins the worker's id (shown in `GET /v1/workers` and each step's "
    "step_metadata.worker). Default: the host's name.",
)
@click.option(
    "--grace-s",
    type=click.FloatRange(0, 86_400),
    default=30.0,
    show_default=True,
    help="On SIGTERM or Ctrl-C: how long runs in flight may go on before they are released "
    "to other workers (queued again, not failed).",
)
def worker(once: bool, concurrency: int | None, name: str | None, grace_s: float) -> None:
    """Run a worker on the configured database: claim runs and execute them.

    SIGTERM (or Ctrl-C) drains it: no new claims, runs in flight get --grace-s to finish,
    what is left is released for other workers to resume; then it exits 0.
    """
    import asyncio
    import signal

    from stepline.settings import get_settings

    local.check_providers()
    if name is not None and (not name.strip() or ":" in name or len(name) > 64):
        fail("--name must be 1 to 64 characters, without ':'")
    settings = get_settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})

    async def main() -> None:
        async with local.open_local(worker=True, settings=settings, worker_name=name) as runtime:
            if once:
                for finished in await runtime.worker.drain():
                    note(f"run {finished.id}: {finished.status}")
                return
            pool = runtime.pool
            assert pool is not None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            note(
                f"worker {runtime.worker.worker_id} waiting for runs "
                f"({pool.concurrency} at once; SIGTERM or Ctrl-C drains it)"
            )
            await runtime.work(stop, grace_s=grace_s)
            note(f"worker {runtime.worker.worker_id} drained; stopping")

    try:
        local.run_async(main)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(0) from None


@click.group(no_args_is_help=True)
def db() -> None:
    """Manage the database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the current version."""
    from stepline.settings import get_settings

    async def main() -> None:
        async with local.open_store():
            pass

    local.run_async(main)
    say(f"database at {get_settings().resolved_database_url()} is up to date")
