"""Opening databases: which URLs work, and how SQLite connections are set up."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from stepline.store import Store
from stepline.store.database import normalize_url


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///stepline.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///stepline.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_are_normalized_to_stepline_drivers(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_unsupported_database_is_refused_with_the_urls_that_work() -> None:
    with pytest.raises(ValueError, match=r"unsupported database 'mysql'.*postgresql\+asyncpg"):
        normalize_url("mysql://root@localhost/stepline")


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory SQLite"):
        normalize_url("sqlite+aiosqlite://")


def test_garbage_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        normalize_url("no scheme here")


async def test_sqlite_folder_is_created_and_connections_are_tuned(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "stepline.db"
    store = await Store.connect(f"sqlite:///{path}")
    try:
        await store.upgrade()

        def pragmas(conn: sa.Connection) -> dict[str, object]:
            return {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }

        found = await store.database.read(pragmas)
    finally:
        await store.close()
    assert path.exists()
    # synchronous=1 is NORMAL: with WAL, a crash loses nothing, a power cut the last commits.
    assert found == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }
