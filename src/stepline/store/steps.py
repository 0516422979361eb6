"""Steps: a run's step records, written by the engine as they move and read by the API
as records or as ready-made JSON documents (the fast path, `stepline.store.step_json`).

Every query is scoped by organization (and by workspace when given) and reads with a
keyset (`store.paging`), so no listing loads a whole run. `step_write`, `step_counts`
and `step_counts_of` are also what `runs` uses within its own transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from stepline.records import StepRecord, StepStatus
from stepline.store import mapping
from stepline.store import steps_sql as sql
from stepline.store.errors import StepNotFoundError
from stepline.store.events import step_event_params
from stepline.store.events_sql import INSERT as INSERT_EVENT
from stepline.store.paging import Page, check_page_request, read_page
from stepline.store.repository import Repository
from stepline.store.run_head import head_of, read_head
from stepline.store.step_json import (
    STEP_FILTERS,
    STEPS_ORDER,
    document_of,
    sqlite_chunk,
    sqlite_page,
    step_key,
)
from stepline.store.writer import driver_only, mark_written

_Chunk = tuple[list[str], tuple[Any, ...] | None]
"""A chunk's documents, and the sort key of its last step when more may follow."""


def step_write(
    step: StepRecord, held: Sequence[dict[str, Any]] = ()
) -> Callable[[sa.Connection], None]:
    """The write of a step's mutable fields and its `step.<status>` event, in one
    transaction, after the events of earlier transitions `held` back (`step_event_params`);
    the parameters are taken now, so the caller may go on changing `step`."""
    params = mapping.step_update_params(step)
    events = [*held, step_event_params(step)]

    def op(conn: sa.Connection) -> None:
        if sql.UPDATE.execute(conn, params) != 1:
            raise StepNotFoundError(
                f"step {step.id} ({step.step_id!r} of run {step.run_id}) was never inserted"
            )
        if len(events) == 1:
            INSERT_EVENT.execute(conn, events[0])
        else:
            INSERT_EVENT.executemany(conn, events)
        mark_written(conn, step.run_id)

    return driver_only(op)


def step_counts(conn: sa.Connection, run_id: UUID) -> dict[str, int]:
    """How many of the run's steps are in each status (statuses with none are absent)."""
    return {status: count for status, count in conn.execute(sql.COUNTS, {"run_id": run_id})}


def step_counts_of(conn: sa.Connection, run_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
    """`step_counts` of each run, in one query."""
    counts: dict[UUID, dict[str, int]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return counts
    for run_id, status, count in conn.execute(sql.COUNTS_OF_RUNS, {"run_ids": list(run_ids)}):
        counts[run_id][status] = count
    return counts


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


class StepRepository(Repository):
    """Inserting and updating a run's steps; reading them as records or JSON documents."""

    async def insert(self, steps: Sequence[StepRecord]) -> None:
        """Insert new step records (one executemany)."""
        if not steps:
            return
        rows = [mapping.step_to_row(step) for step in steps]

        def op(conn: sa.Connection) -> None:
            sql.INSERT.executemany(conn, rows)

        await self._write(op)

    async def update(self, step: StepRecord, *, held: Sequence[dict[str, Any]] = ()) -> None:
        """Write the step's mutable fields (state, times, I/O, errors, usage, review, trace).

        Identity fields (run, node, step_id, seq, order_key, loop, iteration, created_at)
        are fixed at insert. `updated_at` is written as the record has it: the caller keeps
        it current. The `step.<status>` event is written in the same transaction, after the
        events of the transitions `held` until this write (`step_event_params` of each).
        """
        await self._write(step_write(step, held))

    async def get(self, step_uuid: UUID) -> StepRecord | None:
        """The step whose record has this UUID, of any run."""

        def read(conn: sa.Connection) -> StepRecord | None:
            row = conn.execute(sql.BY_UUID, {"step_uuid": step_uuid}).mappings().first()
            return None if row is None else mapping.row_to_step(row)

        return await self._read(read)

    async def find(
        self, organization_id: UUID, run_id: UUID, step: UUID | str
    ) -> StepRecord | None:
        """One step of the run: by its record's UUID, or by its step_id string."""
        params: dict[str, Any] = {"organization_id": organization_id, "run_id": run_id}
        if isinstance(step, UUID):
            query, params["step_uuid"] = sql.IN_RUN_BY_UUID, step
        else:
            query, params["step_id"] = sql.IN_RUN_BY_STEP_ID, step

        def read(conn: sa.Connection) -> StepRecord | None:
            row = conn.execute(query, params).mappings().first()
            return None if row is None else mapping.row_to_step(row)

        return await self._read(read)

    async def counts(self, run_id: UUID) -> dict[str, int]:
        """How many of the run's steps are in each status (statuses with none are absent)."""
        return await self._read(lambda conn: step_counts(conn, run_id))

    async def node_statuses(self, organization_id: UUID, run_id: UUID) -> dict[str, str]:
        """Each node's status in the run: its own step's, or its latest step's (loops).

        Reads three columns per step, so a diagram of a 10,000-step run stays cheap.
        """
        params = {"organization_id": organization_id, "run_id": run_id}

        def read(conn: sa.Connection) -> dict[str, str]:
            statuses: dict[str, str] = {}
            own: set[str] = set()
            for node_id, step_id, status in conn.execute(sql.NODE_STATUSES, params):
                if node_id in own:
                    continue
                statuses[node_id] = status
                if step_id == node_id:
                    own.add(node_id)
            return statuses

        return await self._read(read)

    async def page(
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
        filters = _filter_values(status, node_id, node_type, loop_id, iteration)
        query = sql.filtered(sql.of_run(include_io=include_io), filters)
        params = {"run_id": run_id, "organization_id": organization_id}
        return await self._read(
            lambda conn: read_page(
                conn,
                query,
                STEPS_ORDER,
                limit=limit,
                after=after,
                before=before,
                params=params,
                key_of=step_key,
                item_of=mapping.row_to_step,
            )
        )

    async def iter(
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
        filters = {} if node_id is None else {"node_id": node_id}
        base = sql.in_order(sql.filtered(sql.of_run(include_io=True), filters), chunk)
        params = {"run_id": run_id, "organization_id": organization_id}
        last: tuple[Any, ...] | None = None
        while True:
            query = base if last is None else base.where(sql.after(last))

            def read(conn: sa.Connection, query: sa.Select[Any] = query) -> list[Any]:
                return list(conn.execute(query, params).mappings())

            rows = await self._read(read)
            if not rows:
                return
            yield [mapping.row_to_step(row) for row in rows]
            if len(rows) < chunk:
                return
            last = step_key(rows[-1])

    # --- steps as JSON documents (the API's fast path; see `store.step_json`) ------------

    async def page_documents(
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
        """`page` as JSON documents (each the JSON of its StepRecord, the I/O keys left
        out without I/O), after checking in the same read that the run exists, is of
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
                head = head_of(run_id, found)
                if head is None or not head.visible(workflow_id, workspace_id):
                    return None
                return page

            return await driver.read_driver(read_driver)

        query = sql.filtered(sql.documents(self.dialect, include_io=include_io), filters)
        params = {"run_id": run_id, "organization_id": organization_id}

        def read(conn: sa.Connection) -> Page[str] | None:
            head = read_head(conn, organization_id, run_id)
            if head is None or not head.visible(workflow_id, workspace_id):
                return None
            return read_page(
                conn,
                query,
                STEPS_ORDER,
                limit=limit,
                after=after,
                before=before,
                params=params,
                key_of=step_key,
                item_of=document_of,
            )

        return await self._read(read)

    async def iter_documents(
        self,
        run_id: UUID,
        *,
        organization_id: UUID,
        node_id: str | None = None,
        chunk: int = 1000,
        workflow_id: UUID | None = None,
    ) -> AsyncIterator[list[str]]:
        """`iter` as JSON documents (with I/O), `chunk` at a time; `workflow_id`, the
        run's, if known, spares formatting it in every step.

        The next chunk is read while the caller handles the current one (writes it to a
        client), so that the database's work overlaps the sending.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        filters = _filter_values(None, node_id, None, None, None)
        driver = self._sqlite()
        base = sql.in_order(
            sql.filtered(sql.documents(self.dialect, include_io=True), filters), chunk
        )
        params = {"run_id": run_id, "organization_id": organization_id}

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
            query = base if last is None else base.where(sql.after(last))

            def read(conn: sa.Connection) -> _Chunk:
                rows = list(conn.execute(query, params).mappings())
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

    async def list(self, run_id: UUID) -> list[StepRecord]:
        """The run's steps in execution order (order_key, step_id)."""

        def read(conn: sa.Connection) -> list[StepRecord]:
            rows = conn.execute(sql.OF_RUN, {"run_id": run_id}).mappings()
            return [mapping.row_to_step(row) for row in rows]

        return await self._read(read)
