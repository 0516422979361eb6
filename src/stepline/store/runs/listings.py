"""The API's read side of runs: pages, windows, summaries, heads.

Every query is scoped by organization (and workspace when given) and reads with a keyset
(`store.paging`), so no listing loads a whole table. Percentiles are computed by the
database (a count, then one row at an offset of the sorted durations), not by loading
the durations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import (
    FINISHED_RUN_STATUSES,
    RunRecord,
    RunStatus,
)
from stepline.store import mapping
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository
from stepline.store.run_head import RunHead, read_driver_head, read_head
from stepline.store.runs import sql
from stepline.store.steps import step_counts_of

__all__ = ["RunHead", "RunListings", "RunSummary"]


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


def _read_run(conn: sa.Connection, organization_id: UUID, run_id: UUID) -> RunRecord | None:
    params = {"run_id": run_id, "organization_id": organization_id}
    row = conn.execute(sql.GET_RUN_IN_ORGANIZATION, params).mappings().first()
    if row is None:
        return None
    return mapping.row_to_run(row, step_counts_of(conn, [run_id])[run_id])


class RunListings(Repository):
    """Runs as the API lists them: pages, windows, summaries, heads."""

    async def page(
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
        where = sql.of_workflow(
            organization_id,
            workflow_id,
            workspace_id=workspace_id,
            statuses=() if status is None else (status,),
            created_from=created_from,
            created_to=created_to,
        )
        query = sql.page(where)

        def read(conn: sa.Connection) -> Page[RunRecord]:
            page = read_page(
                conn,
                query,
                sql.ORDER,
                limit=limit,
                after=after,
                before=before,
                key_of=_run_key,
                item_of=lambda row: row,
            )
            counts = step_counts_of(conn, [row["id"] for row in page.items])
            items = [mapping.row_to_run(row, counts[row["id"]]) for row in page.items]
            return Page(items, page.next_cursor, page.prev_cursor)

        return await self._read(read)

    async def window(
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
        where = sql.of_workflow(
            organization_id, workflow_id, workspace_id=workspace_id, statuses=statuses
        )
        window = sql.window(where, offset, limit)
        total = sql.count(where)

        def read(conn: sa.Connection) -> tuple[list[RunRecord], int]:
            rows = list(conn.execute(window).mappings())
            counts = step_counts_of(conn, [row["id"] for row in rows])
            items = [mapping.row_to_run(row, counts[row["id"]]) for row in rows]
            return items, int(conn.execute(total).scalar() or 0)

        return await self._read(read)

    async def summary(
        self,
        organization_id: UUID,
        workflow_id: UUID,
        *,
        since: datetime,
        until: datetime,
        workspace_id: UUID | None = None,
    ) -> RunSummary:
        """Counts, success rate, duration percentiles and usage of the runs in the window."""
        window = sql.of_workflow(
            organization_id,
            workflow_id,
            workspace_id=workspace_id,
            created_from=since,
            created_to=until,
        )
        finished_statuses = [s.value for s in FINISHED_RUN_STATUSES]
        by_status = sql.by_status(window)
        timed = sql.timed(window)
        timed_count = sql.count([timed])

        def percentile(conn: sa.Connection, n: int, p: float) -> int | None:
            if n == 0:
                return None
            rank = max(math.ceil(p * n), 1) - 1  # nearest rank, 0-based
            value = conn.execute(sql.duration_at(timed, rank)).scalar()
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

    async def find_by_idempotency_key(self, organization_id: UUID, key: str) -> RunRecord | None:
        """The organization's run created with this Idempotency-Key, if any."""
        params = {"organization_id": organization_id, "key": key}

        def read(conn: sa.Connection) -> RunRecord | None:
            run_id = conn.execute(sql.BY_IDEMPOTENCY_KEY, params).scalar()
            return None if run_id is None else _read_run(conn, organization_id, run_id)

        return await self._read(read)

    async def head(self, organization_id: UUID, run_id: UUID) -> RunHead | None:
        """The organization's run, without step counts; None if there is no such run."""
        driver = self._sqlite()
        if driver is not None:
            return await driver.read_driver(
                lambda conn: read_driver_head(conn, organization_id, run_id)
            )
        return await self._read(lambda conn: read_head(conn, organization_id, run_id))
