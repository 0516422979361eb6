"""SQLite's writer: small writes commit on the event loop, never waiting there for a lock.

A write whose BEGIN IMMEDIATE would wait (another process holds the database's write
lock) goes to the writer thread, which waits; writes keep their submission order across
the loop and the thread; WAL checkpoints run on a thread of their own.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from stepline.store import Store
from stepline.store import writer as writer_module
from stepline.store.tables import organizations
from stepline.store.writer import ThreadWriter


@pytest.fixture
def sqlite_path(sqlite_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "stepline.db"
    shutil.copyfile(sqlite_template, path)
    return path


@pytest.fixture
async def sqlite_store(sqlite_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite+aiosqlite:///{sqlite_path}")
    yield store
    await store.close()


def _writer(store: Store) -> ThreadWriter:
    writer = store.writer
    assert isinstance(writer, ThreadWriter)
    return writer


def _names(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(organizations.c.name).order_by("name")).scalars())


async def test_small_writes_after_the_first_commit_on_the_event_loop(sqlite_store: Store) -> None:
    await sqlite_store.organizations.ensure("first")  # the thread opens the connection
    writer = _writer(sqlite_store)
    handed = writer._handed
    for i in range(10):
        await sqlite_store.organizations.ensure(f"org{i}")
    assert writer._handed == handed, "serial small writes went through the writer thread"
    assert len(await sqlite_store.database.read(_names)) == 11


async def test_a_write_waits_for_another_process_lock_on_the_writer_thread(
    sqlite_store: Store, sqlite_path: Path
) -> None:
    await sqlite_store.organizations.ensure("first")
    writer = _writer(sqlite_store)
    handed = writer._handed
    other = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES (?, 'other', ?)",
            ("0" * 32, "2026-01-01 00:00:00.000000"),
        )
        # The loop's BEGIN finds the lock taken and does not wait: the thread does.
        write = asyncio.ensure_future(sqlite_store.organizations.ensure("mine"))
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert not write.done()
        assert writer._handed == handed + 1
        other.execute("COMMIT")
        await write
    finally:
        other.close()
    assert await sqlite_store.database.read(_names) == ["first", "mine", "other"]
    await sqlite_store.organizations.ensure("then")  # back on the loop
    assert writer._handed == handed + 1


async def test_writes_commit_in_submission_order_across_the_loop_and_the_thread(
    sqlite_store: Store,
) -> None:
    await sqlite_store.organizations.ensure()
    order: list[int] = []

    def op(i: int) -> Callable[[sa.Connection], None]:
        def write(conn: sa.Connection) -> None:
            conn.execute(sa.text("SELECT 1"))
            order.append(i)

        return write

    big = writer_module.INLINE_MAX + 5  # one batch too big for the loop: the thread's
    first = [asyncio.ensure_future(sqlite_store.writer.submit(op(i))) for i in range(big)]
    await asyncio.sleep(0)  # dispatched to the thread
    last = await asyncio.gather(*(sqlite_store.writer.submit(op(big + i)) for i in range(3)))
    await asyncio.gather(*first)
    assert last == [None] * 3
    assert order == list(range(big + 3))


async def test_wal_checkpoints_run_on_their_own_thread(sqlite_store: Store) -> None:
    await sqlite_store.organizations.ensure()
    writer = _writer(sqlite_store)
    for i in range(writer_module.CHECKPOINT_EVERY + 1):
        await sqlite_store.organizations.ensure(f"org{i}")
    checkpointer = writer._checkpointer
    await sqlite_store.close()  # joins the checkpointer once its request is served
    assert checkpointer.checkpoints >= 1


async def test_the_write_connection_leaves_checkpoints_to_the_checkpointer(
    sqlite_store: Store,
) -> None:
    await sqlite_store.organizations.ensure()

    def autocheckpoint(conn: sa.Connection) -> int:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())

    pages = await sqlite_store.writer.submit(autocheckpoint)
    assert pages == writer_module.WAL_AUTOCHECKPOINT_PAGES


async def test_the_loop_begins_only_on_the_connection_it_set_not_to_wait(
    sqlite_store: Store,
) -> None:
    await sqlite_store.organizations.ensure("first")
    writer = _writer(sqlite_store)
    handed = writer._handed
    # As if the driver connection had been replaced behind SQLAlchemy's Connection: its
    # busy_timeout is not known to be 0, so the thread takes the write and sets it.
    writer._loop_driver = object()
    await sqlite_store.organizations.ensure("second")
    assert writer._handed == handed + 1
    await sqlite_store.organizations.ensure("third")
    assert writer._handed == handed + 1

    def busy_timeout(conn: sa.Connection) -> int:
        return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    assert await sqlite_store.writer.submit(busy_timeout) == 0
