"""SQLite: a synchronous engine driven from threads, WAL, one writer.

Through an asyncio driver (aiosqlite) every statement costs several round trips to the
driver's thread. Here the writer thread owns the write connection and drains the write
queue itself (`writer.ThreadWriter`): a batch of writes (BEGIN IMMEDIATE, statements,
COMMIT) costs one hand-off each way; a read is one call to a reader thread.

A read that needs no SQLAlchemy (the API's step documents, API keys) can run on the reader
thread's own driver connection (`read_driver`): no pool checkout, no statement compiling.

Connections run in WAL mode with `synchronous=NORMAL`: a process crash loses nothing, a
power loss may drop the last committed transitions. Writes begin with `BEGIN IMMEDIATE`,
so a writer takes the file's write lock up front (waiting up to `busy_timeout` if another
process holds it) instead of failing when it upgrades a read lock. Reads begin a deferred
transaction, so a read of several statements sees one snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL

from stepline.private_files import create_private_file, make_private_dirs, private_home, tighten
from stepline.store.database import ENGINE_OPTIONS, Database
from stepline.store.writer import Outcome, ThreadWriter, settle_from_thread

T = TypeVar("T")

_BUSY_TIMEOUT_S = 5.0
_PRAGMAS = (
    f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# Two reader threads for the two cores a small machine has: reads spend their time in
# sqlite3_step, outside the GIL; more threads only fight the event loop for the GIL.
_READERS = 2
# And one thread for the driver reads (the API's pages of steps): two threads building
# documents at once in one process are slower than one (SQLite's allocator takes a global
# mutex), and a burst of pages then never holds up the store's other reads.
_DRIVER_READERS = 1
# The files SQLite keeps beside the database while it is open (or after a crash).
_COMPANIONS = ("-wal", "-shm", "-journal")
# Marks the writer's connection, whose transactions begin IMMEDIATE.
_WRITE_OPTION = "stepline_write"


class SQLiteDatabase(Database):
    """A SQLite file, written by one thread and read by a few."""

    dialect = "sqlite"

    def __init__(self, url: URL, home: Path | None = None) -> None:
        self.url = url
        assert url.database is not None  # normalize_url refused in-memory databases
        _create_private(Path(url.database).expanduser(), home)
        self.engine = sa.create_engine(
            url.set(drivername="sqlite+pysqlite"),
            pool_size=_READERS + 1,
            **ENGINE_OPTIONS,
        )
        sa.event.listen(self.engine, "connect", _on_connect)
        sa.event.listen(self.engine, "begin", _on_begin)
        self.writer = ThreadWriter(self._connect_writer, name="stepline-sqlite-writer")
        self._readers = _Threads("stepline-sqlite-reader", _READERS)
        self._driver_readers = _Threads("stepline-sqlite-driver-reader", _DRIVER_READERS)
        self._path = str(Path(url.database).expanduser())
        self._local = threading.local()
        self._drivers: list[sqlite3.Connection] = []
        self._drivers_lock = threading.Lock()
        self._version_conn: sqlite3.Connection | None = None

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self._readers.run(self._read, fn)

    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as conn:
            return fn(conn)

    async def read_driver(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a reader thread's own sqlite3 connection, outside any transaction:
        each statement is its own snapshot (read what must agree in one statement).

        The connection is set up as the engine's are (pragmas, functions); parameters go
        in as stored (UUIDs as 32 hex digits, times as naive UTC text).
        """
        return await self._driver_readers.run(self._read_driver, fn)

    def _read_driver(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "driver", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            _on_connect(conn, None)
            with self._drivers_lock:
                self._drivers.append(conn)
            self._local.driver = conn
        try:
            return fn(conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def data_version(self) -> int:
        """A number that changes whenever a connection commits to the file: any process's,
        this one's writer included (`PRAGMA data_version` on a connection that never
        writes). A few microseconds: call it on the event loop."""
        conn = self._version_conn
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
            self._version_conn = conn
        version: int = conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    async def migrate(self, fn: Callable[[sa.Connection], T]) -> T:
        # The writer thread and BEGIN IMMEDIATE already keep every other writer out.
        return await self.writer.submit(fn)

    def _connect_writer(self) -> sa.Connection:
        return self.engine.connect().execution_options(**{_WRITE_OPTION: True})

    async def close(self) -> None:
        await self.writer.close()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._readers.stop()
        self._driver_readers.stop()
        with self._drivers_lock:
            for conn in self._drivers:
                conn.close()
            self._drivers.clear()
        if self._version_conn is not None:
            self._version_conn.close()
            self._version_conn = None
        self.engine.dispose()


class _Threads:
    """A few daemon threads running submitted calls for the event loop.

    Lighter than `run_in_executor` (one queue put, one `call_soon_threadsafe`): about half
    its cost per call.
    """

    def __init__(self, name: str, count: int) -> None:
        self._queue: SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((partial(fn, *args), future))
        return await future

    def stop(self) -> None:
        """Let the threads finish what is queued, then end them (call off the event loop)."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            call, future = job
            outcome: Outcome
            try:
                outcome = (True, call())
            except BaseException as exc:
                outcome = (False, exc)
            settle_from_thread([future], [outcome])


def _create_private(path: Path, home: Path | None) -> None:
    """Create the database file 0600 (and any folder 0700) before SQLite opens it.

    SQLite gives the -wal, -shm and -journal files it creates the database file's mode
    (and chmods them to it, whatever the umask), so a 0600 file keeps all of them private.
    A database from an older stepline (0644) and its leftover companions are tightened.
    """
    if home is not None and path.resolve().is_relative_to(home.expanduser().resolve()):
        private_home(home.expanduser())
    make_private_dirs(path.parent)
    create_private_file(path)
    for suffix in _COMPANIONS:
        tighten(path.with_name(path.name + suffix))


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module (which would skip it before SELECTs and DDL)
    # and emit it in `_on_begin`: SQLAlchemy's documented recipe for SQLite transactions.
    dbapi_connection.isolation_level = None
    for pragma in _PRAGMAS:
        dbapi_connection.execute(pragma)
    _use_wal(dbapi_connection)


def _use_wal(dbapi_connection: Any) -> None:
    """Switch the file to WAL (it stays so), waiting out other connections doing the same.

    Switching needs a lock that SQLite may refuse at once, busy_timeout or not, while
    another connection works on the file (two stores opening one new file), so retry.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
            if mode.lower() == "wal":
                return
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _on_begin(connection: sa.Connection) -> None:
    # Straight to the driver: this runs once per transaction, on the hot path.
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.get_execution_options().get(_WRITE_OPTION):
        driver.execute("BEGIN IMMEDIATE")
    else:
        driver.execute("BEGIN")
