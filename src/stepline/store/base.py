"""What every group of store verbs stands on: one database, its writer, a read helper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

import sqlalchemy as sa

from stepline.store import database
from stepline.store.bell import RunBell
from stepline.store.database import Database
from stepline.store.writer import Writer

T = TypeVar("T")


class StoreBase:
    """The connection side of `Store`; the verbs live in `Store` and its mixins."""

    def __init__(self, db: Database) -> None:
        self.database = db
        """Where queries run; `database.read(fn)` runs any function of a Connection."""
        self.dialect: str = db.dialect
        self.writer: Writer = db.writer
        """Every write goes through it; its counters tell how well writes are batched."""
        self.run_bell = RunBell()
        """Rings when a run event commits in this process (`stepline.store.bell`)."""
        self.writer.on_commit = self.run_bell.ring

    @classmethod
    async def connect(cls, url: str, *, home: Path | None = None) -> Self:
        """Open the database at `url` (sqlite+aiosqlite:///... or postgresql+asyncpg://...).

        A SQLite file is created 0600 (its missing folders 0700), or tightened to 0600 if
        older; `home`, the STEPLINE_HOME holding it, is made 0700. Call `upgrade()` before
        first use.
        """
        return cls(database.open_database(url, home))

    async def close(self) -> None:
        """Commit the writes already submitted, then release every connection."""
        await self.database.close()

    async def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision (safe to call every start)."""
        await database.upgrade(self.database)

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self.database.read(fn)
