"""The API's read side of runs and steps: pages, summaries, streaming chunks.

Every query is scoped by organization (and workspace when given) and reads with a keyset
(`store.paging`), so no listing loads a whole table. Percentiles are computed by the
database (a count, then one row at an offset of the sorted durations), not by loading
the durations.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import (
    FINISHED_RUN_STATUSES,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from stepline.store import mapping
from stepline.store.base import StoreBase
from stepline.store.database_sqlite import SQLiteDatabase
from stepline.store.paging import Ordering, Page, check_page_request, read_page
from stepline.store.step_json import (
    IO_COLUMNS,
    STEP_FILTERS,
    STEPS_ORDER,
    HeadRow,
    document_of,
    documents_select,
    sqlite_chunk,
    sqlite_page,
    sqlite_run_head,
    step_key,
)
from stepline.store.tables import runs, steps

__all__ = ["IO_COLUMNS", "ListingVerbs", "RunHead", "RunSummary"]

_RUNS_ORDER = Ordering("runs", (runs.c.created_at, runs.c.id), ("datetime", "uuid"), True)
_STEPS_WITHOUT_IO = tuple(c for c in steps.c if c.name not in IO_COLUMNS)
_Chunk = tuple[list[str], tuple[Any, ...] | None]
"""A chunk's documents, and the sort key of its last step when more may follow."""


@dataclass(frozen=True, slots=True)
class RunHead:
    """What a run's reads need to know of it: who may see it, what it is; no step counts."""

    id: UUID
    workflow_id: UUID
    workflow_version: int
    workspace_id: UUID | None
    status: RunStatus

    def visible(self, workflow_id: UUID | None, workspace_id: UUID | None) -> bool:
        """Is it a run of `workflow_id` (when given) seen from `workspace_id` (when given)?"""
        return (workflow_id is None or self.workflow_id == workflow_id) and (
            workspace_id is None or self.workspace_id == workspace_id
        )


_RUN_HEAD = sa.select(
    runs.c.id, runs.c.workflow_id, runs.c.workflow_version, runs.c.workspace_id, runs.c.status
)


def _driver_run_head(
    conn: sqlite3.Connection, organization_id: UUID, run_id: UUID
) -> RunHead | None:
    return _head(run_id, sqlite_run_head(conn, organization_id, run_id))


def _head(run_id: UUID, found: HeadRow | None) -> RunHead | None:
    if found is None:
        return None
    workflow_id, workspace_id, version, status = found
    return RunHead(run_id, workflow_id, version, workspace_id, status)


def _read_run_head(conn: sa.Connection, organization_id: UUID, run_id: UUID) -> RunHead | None:
    query = _RUN_HEAD.where(runs.c.id == run_id, runs.c.organization_id == organization_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    return RunHead(row[0], row[1], row[2], row[3], RunStatus(row[4]))


class RunSummary(BaseModel):
    """How a workflow's runs created in [since, until) went."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: UUID
    since: datetime
    until: datetime
    total: int = Field(description="Runs created in the window.")
    counts: dict[str, int] = Field(description="Runs per status (every status, 0 included).")
    success_rate: float | None = Field(
        description="completed / finished (completed + failed + cancelled); null if none finished."
    )
    p50_duration_ms: int | None = Field(description="Median duration of the finished runs.")
    p95_duration_ms: int | None = Field(description="95th percentile (nearest rank).")
    total_tokens: int
    total_cost: float


def _run_key(row: Any) -> tuple[Any, ...]:
    return row["created_at"], row["id"]


def _step_key(row: Any) -> tuple[Any, ...]:
    return row["order_key"], row["step_id"]


def _step_counts_of(conn: sa.Connection, run_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
    counts: dict[UUID, dict[str, int]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return counts
    query = (
        sa.select(steps.c.run_id, steps.c.status, sa.func.count())
        .where(steps.c.run_id.in_(run_ids))
        .group_by(steps.c.run_id, steps.c.status)
    )
    for run_id, status, count in conn.execute(query):
        counts[run_id][status] = count
    return counts


def _read_run(conn: sa.Connection, organization_id: UUID, run_id: UUID) -> RunRecord | None:
    row = (
        conn.execute(
            sa.select(runs).where(runs.c.id == run_id, runs.c.organization_id == organization_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return mapping.row_to_run(row, _step_counts_of(conn, [run_id])[run_id])


def _steps_query(run_id: UUID, organization_id: UUID, *, include_io: bool) -> sa.Select[Any]:
    columns = list(steps.c) if include_io else list(_STEPS_WITHOUT_IO)
    return sa.select(*columns).where(
        steps.c.run_id == run_id, steps.c.organization_id == organization_id
    )


def _filter_values(
    status: StepStatus | None,
    node_id: str | None,
    node_type: str | None,
    loop_id: str | None,
    iteration: int | None,
) -> dict[str, Any]:
    """The given step filters by column name (STEP_FILTERS order), as stored."""
    given = {
        "status": None if status is None else StepStatus(status).value,
        "node_id": node_id,
        "node_type": node_type,
        "loop_id": loop_id,
        "iteration": iteration,
    }
    return {name: given[name] for name in STEP_FILTERS if given[name] is not None}


def _step_filters(query: sa.Select[Any], filters: dict[str, Any]) -> sa.Select[Any]:
    for name, value in filters.items():
        query = query.where(steps.c[name] == value)
    return query


def _after_step(last: tuple[Any, ...]) -> sa.ColumnElement[bool]:
    """Steps that sort after the key (order_key, step_id)."""
    key, step_id = last
    bound = sa.tuple_(
        sa.literal(key, type_=steps.c.order_key.type),
        sa.literal(step_id, type_=steps.c.step_id.type),
    )
    return sa.tuple_(steps.c.order_key, steps.c.step_id) > bound


class ListingVerbs(StoreBase):
    """Runs and steps as the API lists them; cancel requests."""

    # --- runs ------------------------------------------------------------------------------

    async def page_runs(
        self,
        organization_id: UUID,
        *,
        workflow_id: UUID,
        workspace_id: UUID | None = None,
        status: RunStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RunRecord]:
        """The workflow's runs newest first, with step counts; created_to is exclusive."""
        query = sa.select(runs).where(
            runs.c.organization_id == organization_id, runs.c.workflow_id == workflow_id
        )
        if workspace_id is not None:
            query = query.where(runs.c.workspace_id == workspace_id)
        if status is not None:
            query = query.where(runs.c.status == RunStatus(status).value)
        if created_from is not None:
            query = query.where(runs.c.created_at >= created_from)
        if created_to is not None:
            query = query.where(runs.c.created_at < created_to)

        def read(conn: sa.Connection) -> Page[RunRecord]:
            page = read_page(
                conn,
                query,
                _RUNS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=_run_key,
                item_of=lambda row: row,
            )
            counts = _step_counts_of(conn, [row["id"] for row in page.items])
            items = [mapping.row_to_run(row, counts[row["id"]]) for row in page.items]
            return Page(items, page.next_cursor, page.prev_cursor)

        return await self._read(read)

    async def window_runs(
        self,
        organization_id: UUID,
        *,
        workflow_id: UUID,
        workspace_id: UUID | None = None,
        statuses: Sequence[RunStatus] = (),
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[RunRecord], int]:
        """The workflow's runs newest first from `offset` (at most `limit`), with step
        counts, and how many there are in all: the vendors' dialects page by offset."""
        where = [runs.c.organization_id == organization_id, runs.c.workflow_id == workflow_id]
        if workspace_id is not None:
            where.append(runs.c.workspace_id == workspace_id)
        if statuses:
            where.append(runs.c.status.in_([RunStatus(s).value for s in statuses]))
        window = (
            sa.select(runs)
            .where(*where)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        total = sa.select(sa.func.count()).select_from(runs).where(*where)

        def read(conn: sa.Connection) -> tuple[list[RunRecord], int]:
            rows = list(conn.execute(window).mappings())
            counts = _step_counts_of(conn, [row["id"] for row in rows])
            items = [mapping.row_to_run(row, counts[row["id"]]) for row in rows]
            return items, int(conn.execute(total).scalar() or 0)

        return await self._read(read)

    async def run_summary(
        self,
        organization_id: UUID,
        workflow_id: UUID,
        *,
        since: datetime,
        until: datetime,
        workspace_id: UUID | None = None,
    ) -> RunSummary:
        """Counts, success rate, duration percentiles and usage of the runs in the window."""
        window = [
            runs.c.organization_id == organization_id,
            runs.c.workflow_id == workflow_id,
            runs.c.created_at >= since,
            runs.c.created_at < until,
        ]
        if workspace_id is not None:
            window.append(runs.c.workspace_id == workspace_id)
        finished_statuses = [s.value for s in FINISHED_RUN_STATUSES]
        by_status = (
            sa.select(
                runs.c.status,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(runs.c.total_tokens), 0),
                sa.func.coalesce(sa.func.sum(runs.c.total_cost), 0.0),
            )
            .where(*window)
            .group_by(runs.c.status)
        )
        timed = sa.and_(
            *window, runs.c.status.in_(finished_statuses), runs.c.duration_ms.is_not(None)
        )
        timed_count = sa.select(sa.func.count()).select_from(runs).where(timed)

        def percentile(conn: sa.Connection, n: int, p: float) -> int | None:
            if n == 0:
                return None
            rank = max(math.ceil(p * n), 1) - 1  # nearest rank, 0-based
            query = (
                sa.select(runs.c.duration_ms)
                .where(timed)
                .order_by(runs.c.duration_ms)
                .limit(1)
                .offset(rank)
            )
            value = conn.execute(query).scalar()
            return None if value is None else int(value)

        def read(conn: sa.Connection) -> RunSummary:
            counts = {status.value: 0 for status in RunStatus}
            tokens = 0
            cost = 0.0
            for status, count, status_tokens, status_cost in conn.execute(by_status):
                counts[status] = count
                tokens += int(status_tokens)
                cost += float(status_cost)
            finished = sum(counts[s] for s in finished_statuses)
            timed_n = int(conn.execute(timed_count).scalar() or 0)
            return RunSummary(
                workflow_id=workflow_id,
                since=since,
                until=until,
                total=sum(counts.values()),
                counts=counts,
                success_rate=counts[RunStatus.completed.value] / finished if finished else None,
                p50_duration_ms=percentile(conn, timed_n, 0.50),
                p95_duration_ms=percentile(conn, timed_n, 0.95),
                total_tokens=tokens,
                total_cost=cost,
            )

        return await self._read(read)

    async def find_run_by_idempotency_key(
        self, organization_id: UUID, key: str
    ) -> RunRecord | None:
        """The organization's run created with this Idempotency-Key, if any."""
        query = sa.select(runs.c.id).where(
            runs.c.organization_id == organization_id, runs.c.idempotency_key == key
        )

        def read(conn: sa.Connection) -> RunRecord | None:
            run_id = conn.execute(query).scalar()
            return None if run_id is None else _read_run(conn, organization_id, run_id)

        return await self._read(read)

    # --- steps -----------------------------------------------------------------------------

    async def page_steps(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        status: StepStatus | None = None,
        node_id: str | None = None,
        node_type: str | None = None,
        loop_id: str | None = None,
        iteration: int | None = None,
        include_io: bool = True,
        limit: int = 100,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[StepRecord]:
        """The run's steps in execution order (order_key, step_id), filters ANDed.

        Without I/O, the payload columns are not even read; the records then hold None
        there (leave those keys out when serialising).
        """
        query = _steps_query(run_id, organization_id, include_io=include_io)
        query = _step_filters(query, _filter_values(status, node_id, node_type, loop_id, iteration))
        return await self._read(
            lambda conn: read_page(
                conn,
                query,
                STEPS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=_step_key,
                item_of=mapping.row_to_step,
            )
        )

    # --- steps as JSON documents (the API's fast path; see `store.step_json`) ------------

    async def run_head(self, organization_id: UUID, run_id: UUID) -> RunHead | None:
        """The organization's run, without step counts; None if there is no such run."""
        driver = self._sqlite()
        if driver is not None:
            return await driver.read_driver(
                lambda conn: _driver_run_head(conn, organization_id, run_id)
            )
        return await self._read(lambda conn: _read_run_head(conn, organization_id, run_id))

    async def page_step_documents(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        workflow_id: UUID | None = None,
        workspace_id: UUID | None = None,
        status: StepStatus | None = None,
        node_id: str | None = None,
        node_type: str | None = None,
        loop_id: str | None = None,
        iteration: int | None = None,
        include_io: bool = True,
        limit: int = 100,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[str] | None:
        """`page_steps` as JSON documents (each the JSON of its StepRecord, the I/O keys
        left out without I/O), after checking in the same read that the run exists, is of
        `workflow_id` and is seen from `workspace_id` (each when given); else None.
        """
        check_page_request(limit, after, before)
        filters = _filter_values(status, node_id, node_type, loop_id, iteration)
        driver = self._sqlite()
        if driver is not None:

            def read_driver(conn: sqlite3.Connection) -> Page[str] | None:
                found, page = sqlite_page(
                    conn,
                    run_id,
                    organization_id,
                    filters,
                    workflow_id=workflow_id,
                    include_io=include_io,
                    limit=limit,
                    after=after,
                    before=before,
                )
                head = _head(run_id, found)
                if head is None or not head.visible(workflow_id, workspace_id):
                    return None
                return page

            return await driver.read_driver(read_driver)

        query = documents_select(self.dialect, include_io=include_io).where(
            steps.c.run_id == run_id, steps.c.organization_id == organization_id
        )
        query = _step_filters(query, filters)

        def read(conn: sa.Connection) -> Page[str] | None:
            head = _read_run_head(conn, organization_id, run_id)
            if head is None or not head.visible(workflow_id, workspace_id):
                return None
            return read_page(
                conn,
                query,
                STEPS_ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=step_key,
                item_of=document_of,
            )

        return await self._read(read)

    async def iter_step_documents(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        node_id: str | None = None,
        chunk: int = 1000,
        workflow_id: UUID | None = None,
    ) -> AsyncIterator[list[str]]:
        """`iter_steps` as JSON documents (with I/O), `chunk` at a time; `workflow_id`, the
        run's, if known, spares formatting it in every step.

        The next chunk is read while the caller handles the current one (writes it to a
        client), so that the database's work overlaps the sending.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        filters = _filter_values(None, node_id, None, None, None)
        driver = self._sqlite()
        base = documents_select(self.dialect, include_io=True).where(
            steps.c.run_id == run_id, steps.c.organization_id == organization_id
        )
        base = (
            _step_filters(base, filters).order_by(steps.c.order_key, steps.c.step_id).limit(chunk)
        )

        def read_after(last: tuple[Any, ...] | None) -> Awaitable[_Chunk]:
            if driver is not None:
                return driver.read_driver(
                    lambda conn: sqlite_chunk(
                        conn,
                        run_id,
                        organization_id,
                        filters,
                        workflow_id=workflow_id,
                        last=last,
                        chunk=chunk,
                    )
                )
            query = base if last is None else base.where(_after_step(last))

            def read(conn: sa.Connection) -> _Chunk:
                rows = list(conn.execute(query).mappings())
                more = step_key(rows[-1]) if len(rows) == chunk else None
                return [document_of(row) for row in rows], more

            return self._read(read)

        pending = asyncio.ensure_future(read_after(None))
        try:
            while True:
                docs, last = await pending
                if last is not None:
                    pending = asyncio.ensure_future(read_after(last))
                if docs:
                    yield docs
                if last is None:
                    return
        finally:
            if not pending.done():
                pending.cancel()

    def _sqlite(self) -> SQLiteDatabase | None:
        """The database, when reads can go straight to its driver (SQLite)."""
        database = self.database
        return database if isinstance(database, SQLiteDatabase) else None

    async def get_run_step(
        self, organization_id: UUID, run_id: UUID, step: UUID | str
    ) -> StepRecord | None:
        """One step of the run: by its record's UUID, or by its step_id string."""
        query = sa.select(steps).where(
            steps.c.run_id == run_id, steps.c.organization_id == organization_id
        )
        if isinstance(step, UUID):
            query = query.where(steps.c.id == step)
        else:
            query = query.where(steps.c.step_id == step)

        def read(conn: sa.Connection) -> StepRecord | None:
            row = conn.execute(query).mappings().first()
            return None if row is None else mapping.row_to_step(row)

        return await self._read(read)

    async def iter_steps(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        node_id: str | None = None,
        chunk: int = 500,
    ) -> AsyncIterator[list[StepRecord]]:
        """The run's steps in execution order, `chunk` at a time (one keyset read each)."""
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        base = _steps_query(run_id, organization_id, include_io=True)
        if node_id is not None:
            base = base.where(steps.c.node_id == node_id)
        base = base.order_by(steps.c.order_key, steps.c.step_id).limit(chunk)
        last: tuple[Any, ...] | None = None
        while True:
            query = base
            if last is not None:
                query = query.where(_after_step(last))

            def read(conn: sa.Connection, query: sa.Select[Any] = query) -> list[Any]:
                return list(conn.execute(query).mappings())

            rows = await self._read(read)
            if not rows:
                return
            yield [mapping.row_to_step(row) for row in rows]
            if len(rows) < chunk:
                return
            last = _step_key(rows[-1])

    async def node_statuses(self, organization_id: UUID, run_id: UUID) -> dict[str, str]:
        """Each node's status in the run: its own step's, or its latest step's (loops).

        Reads three columns per step, so a diagram of a 10,000-step run stays cheap.
        """
        query = (
            sa.select(steps.c.node_id, steps.c.step_id, steps.c.status)
            .where(steps.c.run_id == run_id, steps.c.organization_id == organization_id)
            .order_by(steps.c.order_key, steps.c.step_id)
        )

        def read(conn: sa.Connection) -> dict[str, str]:
            statuses: dict[str, str] = {}
            own: set[str] = set()
            for node_id, step_id, status in conn.execute(query):
                if node_id in own:
                    continue
                statuses[node_id] = status
                if step_id == node_id:
                    own.add(node_id)
            return statuses

        return await self._read(read)
