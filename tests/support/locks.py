"""Holding a run's row locked from a transaction of the test's own, as a concurrent store
transaction (a claim, a lease renewal, a review) would hold it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from sqlalchemy.engine import make_url


class _Release(Exception):
    """Leaves the holder's transaction by rolling it back: it changed nothing."""


@asynccontextmanager
async def run_row_locked(database_url: str, run_id: UUID) -> AsyncIterator[None]:
    """Hold the run's row (PostgreSQL: SELECT ... FOR UPDATE) while the block runs; on
    SQLite, which has no row locks, the database's write lock (BEGIN IMMEDIATE)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        conn = sqlite3.connect(url.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    pg = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        async with pg.transaction():
            locked = await pg.fetchval("SELECT id FROM runs WHERE id = $1 FOR UPDATE", run_id)
            assert locked == run_id, f"run {run_id} is not in the database"
            yield
            raise _Release
    except _Release:
        pass
    finally:
        await pg.close()
