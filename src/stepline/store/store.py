"""The store: one database, its writer, and the repositories over them.

`Store` opens the database, upgrades its schema and closes it; everything asked of the
database goes through one of its repositories (`store.runs.claim(...)`,
`store.workflows.save(...)`), each a module (or, for runs, a package) with its SQL beside
it. Every write is an operation submitted to the single `Writer` (group commit); reads
use a pooled connection of their own. Records go in and come out as the models of
`stepline.records`; no row object leaves this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from stepline.store import database
from stepline.store.bell import RunBell
from stepline.store.collections import CollectionRepository
from stepline.store.database import Database
from stepline.store.events import EventRepository
from stepline.store.files import FileRepository
from stepline.store.keys import KeyRepository
from stepline.store.organizations import OrganizationRepository
from stepline.store.runs import RunRepository
from stepline.store.secrets import SecretRepository
from stepline.store.steps import StepRepository
from stepline.store.workers import WorkerRepository
from stepline.store.workflows import WorkflowRepository
from stepline.store.writer import Writer


class Store:
    """One database: its repositories, and the bell that rings when a run changes."""

    def __init__(self, db: Database) -> None:
        self.database = db
        """Where queries run; `database.read(fn)` runs any function of a Connection."""
        self.dialect: str = db.dialect
        self.writer: Writer = db.writer
        """Every write goes through it; its counters tell how well writes are batched."""
        self.run_bell = RunBell()
        """Rings when a run event commits in this process (`stepline.store.bell`)."""
        self.writer.on_commit = self.run_bell.ring

        self.organizations = OrganizationRepository(db)
        self.keys = KeyRepository(db)
        self.workflows = WorkflowRepository(db)
        self.runs = RunRepository(db)
        self.steps = StepRepository(db)
        self.events = EventRepository(db)
        self.secrets = SecretRepository(db)
        self.files = FileRepository(db)
        self.collections = CollectionRepository(db)
        self.workers = WorkerRepository(db)

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
