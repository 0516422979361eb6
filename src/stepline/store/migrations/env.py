"""Alembic's entry point: migrate the connection the store hands over, or a URL's database.

`stepline.store.database.upgrade` passes its open connection in
`config.attributes["connection"]` (Alembic's asyncio cookbook). Run from the `alembic`
command instead (e.g. to autogenerate a new revision), the database is `sqlalchemy.url`
from the config, or else stepline's configured database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import context

from stepline.store.tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters a table by copying it: autogenerate must write batch operations.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on(url: str, home: Path | None) -> None:
    from stepline.store.database import open_database

    database = open_database(url, home)
    try:
        await database.migrate(_run)
    finally:
        await database.close()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    home: Path | None = None
    if not url:
        from stepline.settings import get_settings

        settings = get_settings()
        url, home = settings.resolved_database_url(), settings.home
    asyncio.run(_run_on(url, home))


if context.is_offline_mode():
    raise SystemExit("stepline's migrations run online only: they need a database connection")
_main()
