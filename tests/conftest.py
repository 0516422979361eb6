"""Shared fixtures: a migrated store on SQLite and on PostgreSQL.

Any test that takes `store` (or `store_url`) runs twice, once per database:

- `store_url`: the URL of a migrated database holding no rows. SQLite: a fresh file in
  the test's tmp_path. PostgreSQL: a database of this test session, emptied before each
  test; it is named after `STEPLINE_TEST_POSTGRES_URL` (default
  postgresql+asyncpg://postgres@127.0.0.1:5432/stepline_test) plus the process id, so
  that test sessions running side by side never see each other's rows, and is dropped
  when the session ends.
- `store`: a connected `Store` on `store_url`, closed after the test.
- `empty_database_url`: a database without any table (for migration tests).

When PostgreSQL cannot be reached, its half of the tests is skipped, unless
`STEPLINE_REQUIRE_POSTGRES=1` (as in CI), which makes them fail with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from stepline.store import Store
from stepline.store.tables import metadata
from support.xdist_groups import ModuleScheduling, is_process_heavy

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/stepline_test"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_base_url() -> URL:
    return make_url(os.environ.get("STEPLINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def _postgres_unavailable(reason: str) -> NoReturn:
    if os.environ.get("STEPLINE_REQUIRE_POSTGRES") == "1":
        pytest.fail(
            f"PostgreSQL is required (STEPLINE_REQUIRE_POSTGRES=1) but {reason}", pytrace=False
        )
    pytest.skip(f"PostgreSQL not reachable ({reason}); set STEPLINE_TEST_POSTGRES_URL")


async def _admin(url: URL) -> asyncpg.Connection:
    """A connection to the server's `postgres` database, for CREATE/DROP DATABASE."""
    return await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database="postgres",
        timeout=5,
    )


async def create_postgres_database(name: str) -> str:
    """Create (or re-create) database `name` on the test server; return its URL."""
    base = postgres_base_url()
    try:
        admin = await _admin(base)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _postgres_unavailable(f"cannot connect to {base.render_as_string()}: {exc!r}")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(name: str) -> None:
    admin = await _admin(postgres_base_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _migrate(url: str) -> None:
    store = await Store.connect(url)
    try:
        await store.upgrade()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "stepline.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session, dropped at its end."""
    name = f"{postgres_base_url().database or 'stepline_test'}_{os.getpid()}"
    url = asyncio.run(create_postgres_database(name))
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(drop_postgres_database(name))


async def _empty_postgres(url: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {tables}")
    finally:
        await conn.close()


# Synchronous on purpose: it pulls in session fixtures that run their own event loop,
# which cannot happen inside the test's running loop.
@pytest.fixture(params=DATABASES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated database with no rows (SQLite file or PostgreSQL)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "stepline.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_session_url")
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A connected Store on a migrated, empty database; closed after the test."""
    store = await Store.connect(store_url)
    yield store
    await store.close()


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database without any table."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'stepline.db'}"
        return
    name = f"{postgres_base_url().database or 'stepline_test'}_{os.getpid()}_empty"
    yield asyncio.run(create_postgres_database(name))
    asyncio.run(drop_postgres_database(name))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The process-heavy group first: under pytest-xdist one worker starts on it at once
    and the other on the rest, instead of the group's minutes running last, alone."""
    items.sort(key=lambda item: not is_process_heavy(item))  # stable: otherwise as collected


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pyproject's `--dist loadscope`, as tests/support/xdist_groups.py says."""
    if config.getvalue("dist") != "loadscope":
        return None
    return ModuleScheduling(config, log)
