"""A database the store can use: run a read, run a write transaction, migrate.

The store's queries are plain functions of a SQLAlchemy `Connection`; a `Database` decides
where they run. The two dialects differ only here and in their connection setup:

- SQLite (`database_sqlite`): a synchronous pysqlite engine driven from threads, so that a
  whole write transaction costs one hop off the event loop instead of several per
  statement (as through aiosqlite).
- PostgreSQL (`database_postgres`): an asyncio engine on asyncpg.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from stepline.store.writer import Writer

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class Database(ABC):
    """Where the store's connection functions run; one per Store."""

    dialect: str
    url: URL
    writer: Writer
    """Runs every write of the store (see `stepline.store.writer`)."""

    @abstractmethod
    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn` on a pooled connection (in a read transaction) and return its result."""

    @abstractmethod
    async def migrate(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn` (Alembic) in a transaction that no other process migrates at once."""

    @abstractmethod
    async def close(self) -> None:
        """Commit the writes already submitted, then release every connection and thread."""


def normalize_url(url: str) -> URL:
    """The URL with stepline's async driver name, or a ValueError saying which URLs work."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"not a database URL: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _DRIVERS:
        raise ValueError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}"
            ": use sqlite+aiosqlite:///path/to/stepline.db or postgresql+asyncpg://user@host/db"
        )
    parsed = parsed.set(drivername=_DRIVERS[backend])
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "an in-memory SQLite database cannot be shared by the store's writer and readers: "
            "give a file path, e.g. sqlite+aiosqlite:///tmp/stepline.db"
        )
    return parsed


def open_database(url: str, home: Path | None = None) -> Database:
    """The Database for `url` (its engine connects lazily, on first use).

    A SQLite file is created 0600 in folders created 0700; `home` (STEPLINE_HOME) is
    tightened to 0700 when the file lives in it.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        from stepline.store.database_sqlite import SQLiteDatabase

        return SQLiteDatabase(parsed, home)
    from stepline.store.database_postgres import PostgresDatabase

    return PostgresDatabase(parsed)


def json_dumps(value: Any) -> str:
    """JSON for JSON columns; also takes datetimes, UUIDs and models in free-form payloads."""
    return pydantic_core.to_json(value).decode()


def json_loads(text: str | bytes) -> Any:
    try:
        return pydantic_core.from_json(text)
    except ValueError as exc:
        if not str(exc).startswith("recursion limit exceeded"):
            raise
        # Deeper than pydantic's parser goes (200 levels): a document stored before
        # documents were bounded (`stepline.documents`). Python's reader goes deeper.
        return json.loads(text)


ENGINE_OPTIONS: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for stepline's migrations; env.py migrates `connection`."""
    from alembic.config import Config  # alembic costs 70 ms to import: only to migrate

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database) -> None:
    """Bring the database to the newest migration; a no-op when it is there already."""
    await database.migrate(_upgrade)


def _upgrade(connection: sa.Connection) -> None:
    if _revision_of(connection) == HEAD_REVISION:
        return  # the common case, told without loading alembic and every migration script
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _revision_of(connection: sa.Connection) -> str | None:
    """The database's migration revision (None before the first)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _head_revision() -> str:
    # Each migration is versions/NNNN_<what>.py with revision "NNNN", one after another
    # (tests/store/test_migrations.py holds this to alembic's own head).
    scripts = (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    return max(path.name[:4] for path in scripts)


HEAD_REVISION = _head_revision()
"""The newest migration's revision."""
