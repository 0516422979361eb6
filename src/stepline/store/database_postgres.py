"""PostgreSQL: an asyncio engine on asyncpg; the writer keeps one connection of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from stepline.store.database import ENGINE_OPTIONS, Database
from stepline.store.writer import TaskWriter

T = TypeVar("T")

# Any constant; held while migrating so that processes starting together migrate once.
_MIGRATION_LOCK = 7_142_365_001


class PostgresDatabase(Database):
    """A PostgreSQL database, shared with other processes (workers, API replicas)."""

    dialect = "postgresql"

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine = create_async_engine(url, **ENGINE_OPTIONS)
        self._write_conn: AsyncConnection | None = None
        self.writer = TaskWriter(self._on_write_connection)

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    async def _on_write_connection(self, fn: Callable[[sa.Connection], T]) -> T:
        conn = self._write_conn
        if conn is None or conn.closed:
            conn = self._write_conn = await self.engine.connect()
        return await conn.run_sync(fn)

    async def migrate(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.writer.close()
        if self._write_conn is not None:
            await self._write_conn.close()
            self._write_conn = None
        await self.engine.dispose()
