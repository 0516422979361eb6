"""The store's single writer: every write goes through it, queued writes commit together.

Callers submit an operation (a plain function of a SQLAlchemy `Connection`) and await its
durable commit. The writer applies everything queued when it looks in ONE transaction
(group commit): the transitions of concurrent steps share a commit, and the database
never sees two writers from one store (SQLite never answers "database is locked"). If a
batch fails, its operations are retried one transaction each, so only the bad one gets
the exception.

Two writers share `run_batch`, differing only in where the queue is drained:

- `ThreadWriter` (SQLite): a thread that owns the write connection drains the queue
  itself, so a write costs one hand-off to that thread and one back to the event loop.
- `TaskWriter` (PostgreSQL): an asyncio task drains the queue and runs each batch through
  the asyncio driver.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from queue import SimpleQueue
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from stepline.store.errors import StoreClosedError

T = TypeVar("T")

# One write: runs inside the writer's transaction; must not commit or roll back itself.
Operation = Callable[[sa.Connection], T]
# What became of an operation: (True, its result) or (False, its exception).
Outcome = tuple[bool, Any]
# Keys an operation marked with `mark_written` (e.g. the runs it wrote events of).
Marks = frozenset[Any]

_MARKS = "stepline.writer.marks"
_DRIVER_ONLY = "__stepline_driver_only__"

MAX_BATCH = 1000
INLINE_MAX = 16
"""The largest batch `ThreadWriter` commits on the event loop rather than on its thread."""
SQLITE_BUSY = 5
CHECKPOINT_EVERY = 100
"""`ThreadWriter` asks its checkpointer for a WAL checkpoint after this many commits."""
WAL_AUTOCHECKPOINT_PAGES = 4_000
"""The writer connection's own auto-checkpoint: a backstop should the checkpointer lag."""

log = logging.getLogger(__name__)


class Writer(ABC):
    """Applies submitted operations in as few transactions as the load allows."""

    def __init__(self) -> None:
        self.on_commit: Callable[[Marks], None] | None = None
        """Called on the event loop with the keys the operations of each committed
        transaction marked (`mark_written`): how readers hear of a change without polling."""
        self.transactions = 0
        """How many transactions were committed (a batch counts once)."""
        self.operations = 0
        """How many operations were committed."""
        self._closing = False

    @abstractmethod
    def enqueue(self, operation: Operation[T]) -> asyncio.Future[T]:
        """Queue `operation` now; the future gets its result once it is committed.

        Writes commit in the order they were queued, so a caller may queue a write, go on,
        and await it later (e.g. with the next write of the same record, which then shares
        its commit). Call it on the event loop; cancelling the future gives the write up if
        it has not started yet.
        """

    async def submit(self, operation: Operation[T]) -> T:
        """Run `operation` in a write transaction; return its result once committed."""
        return await self.enqueue(operation)

    @abstractmethod
    async def close(self) -> None:
        """Stop taking writes; the ones already submitted are committed first."""

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosedError("the store is closed: no more writes")

    def _count(self, outcomes: list[Outcome], transactions: int) -> None:
        self.transactions += transactions
        self.operations += sum(1 for ok, _ in outcomes if ok)

    def _announce(self, marks: Marks) -> None:
        """On the event loop: tell `on_commit` what the committed writes marked."""
        if marks and self.on_commit is not None:
            try:
                self.on_commit(marks)
            except Exception:  # a listener's bug must not fail the writes
                log.exception("a commit listener failed")


def driver_only(operation: Operation[T]) -> Operation[T]:
    """Mark an operation that runs its statements on the driver's connection alone
    (`Prepared`, `mark_written`), never through SQLAlchemy's: a batch of such operations
    may begin and commit on the driver too, skipping SQLAlchemy's transaction machinery
    (about 10 us a transaction, a step's hot path)."""
    setattr(operation, _DRIVER_ONLY, True)
    return operation


def _is_driver_only(operation: Operation[Any]) -> bool:
    return getattr(operation, _DRIVER_ONLY, False) is True


def mark_written(conn: sa.Connection, key: Any) -> None:
    """In an operation: announce `key` to the writer's `on_commit` once the write commits
    (not at all if it rolls back)."""
    conn.info.setdefault(_MARKS, set()).add(key)


def _take_marks(conn: sa.Connection) -> Marks:
    return frozenset(conn.info.pop(_MARKS, ()))


def run_batch(
    conn: sa.Connection, operations: list[Operation[Any]]
) -> tuple[list[Outcome], int, Marks]:
    """Apply `operations` in one transaction, or one by one if that fails.

    Returns each operation's outcome, how many transactions were committed, and what the
    committed ones marked (`mark_written`).
    """
    _take_marks(conn)
    if len(operations) > 1:
        try:
            with conn.begin():
                results = [operation(conn) for operation in operations]
        except Exception:
            _take_marks(conn)
            log.debug("a batch of %d writes failed; retrying them one by one", len(operations))
        else:
            return [(True, result) for result in results], 1, _take_marks(conn)
    outcomes: list[Outcome] = []
    committed = 0
    marks: set[Any] = set()
    for operation in operations:
        try:
            with conn.begin():
                result = operation(conn)
        except Exception as exc:
            _take_marks(conn)
            outcomes.append((False, exc))
        else:
            marks |= _take_marks(conn)
            outcomes.append((True, result))
            committed += 1
    return outcomes, committed, frozenset(marks)


def _run_batch_on(
    operations: list[Operation[Any]], conn: sa.Connection
) -> tuple[list[Outcome], int, Marks]:
    return run_batch(conn, operations)


def _settle(futures: list[asyncio.Future[Any]], outcomes: list[Outcome]) -> None:
    for future, (ok, value) in zip(futures, outcomes, strict=True):
        if future.done():  # the caller was cancelled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _fail(futures: list[asyncio.Future[Any]], error: BaseException) -> None:
    _settle(futures, [(False, error)] * len(futures))


# A submitted write and the future its caller awaits.
_Pending = tuple[Operation[Any], "asyncio.Future[Any]"]


class ThreadWriter(Writer):
    """SQLite's writer: small batches run on the event loop, the rest on a writer thread.

    A hand-off to a thread and back costs more than a small SQLite write transaction
    (about 55 us on a 2-core VM against 10-20 us for a step's update and its event), so
    the writes submitted during one turn of the event loop are gathered and, when they are
    few (`inline_max`) and the thread has nothing queued or in hand, committed right there
    on the loop: BEGIN IMMEDIATE is tried without waiting (the connection's busy_timeout is
    0 but while the thread uses it), and if another process holds the database's write
    lock the batch goes to the thread, which waits for it (the busy_timeout the connection
    was opened with) without blocking the loop. Larger batches (a fan-out
    starting) always go to the thread. Either way a write is committed before its caller
    hears back, and writes commit in the order they were submitted.

    The connection is shared by the loop and the thread, never used by both at once
    (`_conn_lock`), and opened by the thread (its set-up may wait on other processes).
    """

    def __init__(
        self,
        connect: Callable[[], sa.Connection],
        *,
        name: str,
        inline_max: int = INLINE_MAX,
    ) -> None:
        super().__init__()
        self._connect = connect
        self._inline_max = inline_max
        self._queue: SimpleQueue[list[_Pending] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._stopped = threading.Event()
        self._started = False
        self._conn: sa.Connection | None = None
        self._busy_timeout_ms: int | None = None
        # The driver connection whose busy_timeout is 0: the only one the loop begins on.
        self._loop_driver: Any = None
        # Held by whoever uses the connection (the loop or the thread).
        self._conn_lock = threading.Lock()
        # Submitted during this turn of the loop, not yet dispatched.
        self._pending: list[_Pending] = []
        self._dispatch_loop: asyncio.AbstractEventLoop | None = None
        # Batches given to the thread (counted on the loop) and finished by it (counted in
        # the thread): the loop runs a batch itself only when the two are equal, so that a
        # write never overtakes one submitted before it.
        self._handed = 0
        self._finished = 0
        self._checkpointer = _Checkpointer(connect, name=f"{name}-checkpointer")
        self._uncheckpointed = 0  # commits since the last checkpoint request

    def enqueue(self, operation: Operation[T]) -> asyncio.Future[T]:
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future))
        if self._dispatch_loop is not loop:
            # The writes of this turn of the loop are dispatched together, after it.
            self._dispatch_loop = loop
            loop.call_soon(self._dispatch)
        return future

    async def close(self) -> None:
        self._closing = True
        self._dispatch()
        if self._started:
            self._queue.put(None)
            await asyncio.to_thread(self._stopped.wait)
        with self._conn_lock:
            self._close_connection()
        await asyncio.to_thread(self._checkpointer.stop)

    # -- on the event loop -----------------------------------------------------------

    def _dispatch(self) -> None:
        self._dispatch_loop = None
        pending, self._pending = self._pending, []
        # A caller that stopped waiting (cancelled) gave up on its write.
        live = [item for item in pending if not item[1].done()]
        for start in range(0, len(live), MAX_BATCH):
            batch = live[start : start + MAX_BATCH]
            if not self._run_inline(batch):
                self._hand_off(batch)

    def _run_inline(self, batch: list[_Pending]) -> bool:
        """Commit `batch` on the loop if that needs no waiting; False if it did not run.

        A batch of several writes that fails is left to the thread, which retries them one
        transaction each (as `run_batch` does), waiting for the lock if it must.
        """
        if (
            len(batch) > self._inline_max
            or self._handed != self._finished
            or self._conn is None
            or self._conn.closed
            or not self._conn_lock.acquire(blocking=False)
        ):
            return False
        futures = [future for _, future in batch]
        try:
            conn = self._conn
            transaction: _Transaction | None
            if all(_is_driver_only(op) for op, _ in batch):
                transaction = self._begin_on_driver(conn)
            else:
                transaction = self._begin_without_waiting(conn)
            if transaction is None:
                return False
            _take_marks(conn)
            marks: Marks = frozenset()
            try:
                results = [op(conn) for op, _ in batch]
                transaction.commit()
            except Exception as exc:
                transaction.rollback()
                _take_marks(conn)
                if len(batch) > 1:
                    return False
                outcomes: list[Outcome] = [(False, exc)]
            except BaseException as exc:  # KeyboardInterrupt...: nothing was committed
                transaction.rollback()
                _take_marks(conn)
                _fail(futures, exc)
                raise
            else:
                outcomes = [(True, result) for result in results]
                marks = _take_marks(conn)
            self._count(outcomes, 1 if outcomes[0][0] else 0)
        finally:
            self._conn_lock.release()
        _settle(futures, outcomes)
        self._announce(marks)
        return True

    def _begin_without_waiting(self, conn: sa.Connection) -> sa.RootTransaction | None:
        """A write transaction if the database's write lock is free now, else None.

        The connection's busy_timeout is 0 on the loop. Once BEGIN IMMEDIATE holds the
        write lock, nothing in a WAL transaction waits on another connection (readers never
        block the writer, COMMIT needs no other lock, and the checkpoint after it is
        passive), so the statements run as on the thread. Any other failure to begin is
        also None, so that the thread meets it again and deals with it.
        """
        if (
            self._busy_timeout_ms is None
            or conn.connection.driver_connection is not self._loop_driver
        ):
            return None
        try:
            return conn.begin()
        except Exception as exc:
            if not _is_busy(exc):
                log.debug("could not begin a write on the event loop: %r", exc)
            return None

    def _begin_on_driver(self, conn: sa.Connection) -> _DriverTransaction | None:
        """`_begin_without_waiting`, on the driver's connection (a driver-only batch)."""
        driver: Any = self._loop_driver
        ours = driver is not None and conn.connection.driver_connection is driver
        if self._busy_timeout_ms is None or not ours or conn.in_transaction():
            return None
        try:
            driver.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            if not _is_busy(exc):
                log.debug("could not begin a write on the event loop: %r", exc)
            return None
        return _DriverTransaction(driver)

    def _hand_off(self, batch: list[_Pending]) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        self._handed += 1
        self._queue.put(batch)

    # -- on the writer thread ----------------------------------------------------------

    def _serve(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch, taken = list(item), 1
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    more = self._queue.get()
                    if more is None:
                        stopping = True
                        break
                    batch.extend(more)
                    taken += 1
                with self._conn_lock:
                    try:
                        futures, outcomes, marks = self._write(batch)
                    finally:
                        self._finished += taken
                # Only now: a caller told of its commit may write again at once, and that
                # write should find the connection free to use on the loop.
                if futures:
                    settle_from_thread(futures, outcomes, partial(self._announce, marks))
        finally:
            with self._conn_lock:
                self._close_connection()
            # Whatever is still queued will never run: tell its callers.
            leftovers: list[asyncio.Future[Any]] = []
            while not self._queue.empty():
                if (item := self._queue.get()) is not None:
                    leftovers.extend(future for _, future in item)
            if leftovers:
                closed = StoreClosedError("the store closed")
                settle_from_thread(leftovers, [(False, closed)] * len(leftovers))
            self._stopped.set()

    def _write(
        self, batch: list[_Pending]
    ) -> tuple[list[asyncio.Future[Any]], list[Outcome], Marks]:
        """Commit `batch` (call with `_conn_lock` held); its live futures, their outcomes and
        what the committed writes marked."""
        # A caller that stopped waiting (cancelled) gave up on its write.
        live = [(op, future) for op, future in batch if not future.done()]
        if not live:
            return [], [], frozenset()
        futures = [future for _, future in live]
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._open()
            self._set_busy_timeout(self._busy_timeout_ms)
            try:
                outcomes, committed, marks = run_batch(self._conn, [op for op, _ in live])
            finally:
                self._set_busy_timeout(0)
        except BaseException as exc:  # the connection itself failed
            outcomes, committed, marks = [(False, exc)] * len(live), 0, frozenset()
            self._close_connection()
        self._count(outcomes, committed)
        return futures, outcomes, marks

    def _count(self, outcomes: list[Outcome], transactions: int) -> None:
        # Called with `_conn_lock` held, from the loop or the thread.
        super()._count(outcomes, transactions)
        self._uncheckpointed += transactions
        if self._uncheckpointed >= CHECKPOINT_EVERY and self._busy_timeout_ms is not None:
            self._uncheckpointed = 0
            self._checkpointer.request()

    def _open(self) -> sa.Connection:
        conn = self._connect()
        # The thread's busy_timeout, as the connection was opened (SQLite only; None else):
        # the loop's is 0.
        self._busy_timeout_ms = None
        if conn.dialect.name == "sqlite":
            driver = conn.connection.driver_connection
            assert driver is not None
            (self._busy_timeout_ms,) = driver.execute("PRAGMA busy_timeout").fetchone()
            # Commits (on the loop too) leave checkpoints, and their fsyncs, to the
            # checkpointer; this only caps the WAL should it fall behind.
            driver.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        return conn

    def _set_busy_timeout(self, ms: int | None) -> None:
        """Set the write connection's busy_timeout (SQLite; with `_conn_lock` held)."""
        if ms is None or self._conn is None or self._busy_timeout_ms is None:
            return
        driver = self._conn.connection.driver_connection
        assert driver is not None
        self._loop_driver = None
        driver.execute(f"PRAGMA busy_timeout={ms}")
        if ms == 0:
            self._loop_driver = driver

    def _close_connection(self) -> None:
        """Close the connection (call with `_conn_lock` held)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class _Transaction(Protocol):
    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class _DriverTransaction:
    """A write transaction begun on the driver's connection, outside SQLAlchemy's view."""

    __slots__ = ("_driver",)

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def commit(self) -> None:
        self._driver.execute("COMMIT")

    def rollback(self) -> None:
        if self._driver.in_transaction:
            self._driver.execute("ROLLBACK")


class _Checkpointer:
    """A thread that checkpoints SQLite's WAL on request, on a connection of its own.

    A PASSIVE checkpoint copies committed pages from the WAL into the database file and
    syncs both; it neither waits for nor blocks the writer, so commits (on the event loop
    or the writer thread) no longer pay for it. Failures are logged and ignored: the next
    request, or the writer's own auto-checkpoint, catches up.
    """

    def __init__(self, connect: Callable[[], sa.Connection], *, name: str) -> None:
        self._connect = connect
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._started = False
        self.checkpoints = 0
        """How many checkpoints ran (for tests)."""

    def request(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        """End the thread (call off the event loop); a checkpoint under way finishes first."""
        self._stopping = True
        self._wanted.set()
        if self._started:
            self._thread.join()

    def _serve(self) -> None:
        conn: sa.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = self._connect()
                    driver = conn.connection.driver_connection
                    assert driver is not None
                    driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except Exception:
                    log.debug("WAL checkpoint failed", exc_info=True)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()


def _is_busy(exc: BaseException) -> bool:
    """Whether a SQLite error (raw or wrapped by SQLAlchemy) says the database is locked."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == SQLITE_BUSY)
    return "locked" in str(orig)


def settle_from_thread(
    futures: list[asyncio.Future[Any]],
    outcomes: list[Outcome],
    then: Callable[[], None] | None = None,
) -> None:
    """From another thread: give the futures (of one event loop) their outcomes, then call
    `then` on that loop."""
    try:
        loop = futures[0].get_loop()
        loop.call_soon_threadsafe(_settle, futures, outcomes)
        if then is not None:
            loop.call_soon_threadsafe(then)
    except RuntimeError:
        pass  # the event loop is closed: nobody is waiting any more


class TaskWriter(Writer):
    """An asyncio task that drains the queue and runs each batch through `run`.

    `run(fn)` calls `fn` with the writer's connection (e.g. through `run_sync`).
    """

    def __init__(self, run: Callable[[Callable[[sa.Connection], Any]], Awaitable[Any]]) -> None:
        super().__init__()
        self._run = run
        self._queue: deque[tuple[Operation[Any], asyncio.Future[Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, operation: Operation[T]) -> asyncio.Future[T]:
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="stepline-store-writer")
        self._wakeup.set()
        return future

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _drain(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                size = min(len(self._queue), MAX_BATCH)
                batch = [self._queue.popleft() for _ in range(size)]
                live = [(op, future) for op, future in batch if not future.done()]
                if not live:
                    continue
                futures = [future for _, future in live]
                operations = [op for op, _ in live]
                try:
                    outcomes, committed, marks = await self._run(partial(_run_batch_on, operations))
                except Exception as exc:  # the connection itself failed
                    outcomes, committed, marks = [(False, exc)] * len(live), 0, frozenset()
                except BaseException:
                    _fail(futures, StoreClosedError("the store's writer stopped"))
                    raise
                self._count(outcomes, committed)
                _settle(futures, outcomes)
                self._announce(marks)
        finally:
            _fail([future for _, future in self._queue], StoreClosedError("the store closed"))
            self._queue.clear()
