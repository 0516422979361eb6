"""A `stepline serve` on a database of its own, SQLite or PostgreSQL, for tests that keep
one server for a module (conftest.py's per-test databases are emptied between tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from support.server import ServeProcess, start_server

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/stepline_test"


def _server() -> URL:
    return make_url(os.environ.get("STEPLINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


async def _admin(statement: str) -> None:
    url = _server()
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database="postgres",
        timeout=5,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def fresh_database(name: str) -> str:
    """The URL of database `name`, created empty (dropped first if it exists); skips the
    test when no server answers, unless STEPLINE_REQUIRE_POSTGRES=1 (then it fails)."""
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("STEPLINE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable: {exc!r}", pytrace=False)
        pytest.skip(f"PostgreSQL not reachable ({exc!r})")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return _server().set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def serving(database: str, home: Path) -> Iterator[tuple[ServeProcess, str]]:
    """(server, its database URL): `stepline serve` on a new SQLite file in `home`, or on
    a new PostgreSQL database (`database` "postgres"), stopped and dropped afterwards."""
    if database != "postgres":
        server = start_server(home)
        try:
            yield server, server.database_url
        finally:
            server.stop()
        return
    name = f"stepline_serve_{os.getpid()}_{home.parent.name}"[:63]
    url = fresh_database(name)
    server = start_server(home, env={"STEPLINE_DATABASE_URL": url})
    try:
        yield server, url
    finally:
        server.stop()
        drop_database(name)
