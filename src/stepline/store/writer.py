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
from typing import Any, TypeVar

import sqlalchemy as sa

from stepline.store.errors import StoreClosedError

T = TypeVar("T")

# One write: runs inside the writer's transaction; must not commit or roll back itself.
Operation = Callable[[sa.Connection], T]
# What became of an operation: (True, its result) or (False, its exception).
Outcome = tuple[bool, Any]

MAX_BATCH = 1000

log = logging.getLogger(__name__)


class Writer(ABC):
    """Applies submitted operations in as few transactions as the load allows."""

    def __init__(self) -> None:
        self.transactions = 0
        """How many transactions were committed (a batch counts once)."""
        self.operations = 0
        """How many operations were committed."""
        self._closing = False

    @abstractmethod
    async def submit(self, operation: Operation[T]) -> T:
        """Run `operation` in a write transaction; return its result once committed."""

    @abstractmethod
    async def close(self) -> None:
        """Stop taking writes; the ones already submitted are committed first."""

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosedError("the store is closed: no more writes")

    def _count(self, outcomes: list[Outcome], transactions: int) -> None:
        self.transactions += transactions
        self.operations += sum(1 for ok, _ in outcomes if ok)


def run_batch(conn: sa.Connection, operations: list[Operation[Any]]) -> tuple[list[Outcome], int]:
    """Apply `operations` in one transaction, or one by one if that fails.

    Returns each operation's outcome and how many transactions were committed.
    """
    if len(operations) > 1:
        try:
            with conn.begin():
                results = [operation(conn) for operation in operations]
        except Exception:
            log.debug("a batch of %d writes failed; retrying them one by one", len(operations))
        else:
            return [(True, result) for result in results], 1
    outcomes: list[Outcome] = []
    committed = 0
    for operation in operations:
        try:
            with conn.begin():
                result = operation(conn)
        except Exception as exc:
            outcomes.append((False, exc))
        else:
            outcomes.append((True, result))
            committed += 1
    return outcomes, committed


def _run_batch_on(
    operations: list[Operation[Any]], conn: sa.Connection
) -> tuple[list[Outcome], int]:
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


class ThreadWriter(Writer):
    """A writer thread that owns its connection and drains the queue itself."""

    def __init__(self, connect: Callable[[], sa.Connection], *, name: str) -> None:
        super().__init__()
        self._connect = connect
        self._queue: SimpleQueue[tuple[Operation[Any], asyncio.Future[Any]] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._stopped = threading.Event()
        self._started = False

    async def submit(self, operation: Operation[T]) -> T:
        self._check_open()
        if not self._started:
            self._started = True
            self._thread.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((operation, future))
        return await future

    async def close(self) -> None:
        self._closing = True
        if self._started:
            self._queue.put(None)
            await asyncio.to_thread(self._stopped.wait)

    def _serve(self) -> None:
        conn: sa.Connection | None = None
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    more = self._queue.get()
                    if more is None:
                        stopping = True
                        break
                    batch.append(more)
                # A caller that stopped waiting (cancelled) gave up on its write.
                live = [(op, future) for op, future in batch if not future.done()]
                if not live:
                    continue
                futures = [future for _, future in live]
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    outcomes, committed = run_batch(conn, [op for op, _ in live])
                except BaseException as exc:  # the connection itself failed
                    outcomes, committed = [(False, exc)] * len(live), 0
                    if conn is not None:
                        conn.close()
                    conn = None
                self._count(outcomes, committed)
                settle_from_thread(futures, outcomes)
        finally:
            if conn is not None:
                conn.close()
            # Whatever is still queued will never run: tell its callers.
            leftovers = []
            while not self._queue.empty():
                if (item := self._queue.get()) is not None:
                    leftovers.append(item[1])
            if leftovers:
                closed = StoreClosedError("the store closed")
                settle_from_thread(leftovers, [(False, closed)] * len(leftovers))
            self._stopped.set()


def settle_from_thread(futures: list[asyncio.Future[Any]], outcomes: list[Outcome]) -> None:
    """From another thread: give the futures (of one event loop) their outcomes."""
    try:
        futures[0].get_loop().call_soon_threadsafe(_settle, futures, outcomes)
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

    async def submit(self, operation: Operation[T]) -> T:
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="stepline-store-writer")
        self._wakeup.set()
        return await future

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
                    outcomes, committed = await self._run(partial(_run_batch_on, operations))
                except Exception as exc:  # the connection itself failed
                    outcomes, committed = [(False, exc)] * len(live), 0
                except BaseException:
                    _fail(futures, StoreClosedError("the store's writer stopped"))
                    raise
                self._count(outcomes, committed)
                _settle(futures, outcomes)
        finally:
            _fail([future for _, future in self._queue], StoreClosedError("the store closed"))
            self._queue.clear()
