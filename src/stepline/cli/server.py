"""`stepline serve`, `stepline worker` and `stepline db upgrade`: running stepline."""

from __future__ import annotations

import click

from stepline.cli import local
from stepline.cli.console import note, say


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
def worker(once: bool) -> None:
    """Run a worker on the configured database: claim runs and execute them."""
    import asyncio

    local.check_providers()

    async def main() -> None:
        async with local.open_local(worker=True) as runtime:
            w = runtime.worker
            if once:
                for finished in await w.drain():
                    note(f"run {finished.id}: {finished.status}")
                return
            note(f"worker {w.worker_id} waiting for runs (Ctrl-C to stop)")
            await w.serve(asyncio.Event())

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
