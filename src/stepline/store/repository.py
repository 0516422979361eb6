"""What every repository of the store stands on: the one database, its writer, and the
boundary where driver errors become the store's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from stepline.store.database import Database
from stepline.store.database_sqlite import SQLiteDatabase
from stepline.store.errors import ConstraintRefused, translate
from stepline.store.writer import Operation, Writer

T = TypeVar("T")


class Repository:
    """One concept's verbs (runs, steps, keys...) over the store's shared database.

    Reads run on a pooled connection of their own; every write is an operation submitted
    to the single `Writer` (group commit). A driver error a verb expects (a unique index
    refusing a row) leaves here as a `StoreError` (`stepline.store.errors.translate`).
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect: str = database.dialect
        self.writer: Writer = database.writer

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        try:
            return await self.database.read(fn)
        except ConstraintRefused as exc:
            raise translate(exc) from exc

    async def _write(self, operation: Operation[T]) -> T:
        try:
            return await self.writer.submit(operation)
        except ConstraintRefused as exc:
            raise translate(exc) from exc

    def _sqlite(self) -> SQLiteDatabase | None:
        """The database, when reads can go straight to its driver (SQLite)."""
        database = self.database
        return database if isinstance(database, SQLiteDatabase) else None
