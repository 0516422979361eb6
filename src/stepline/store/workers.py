"""The fleet's registry: which workers are alive, how busy, and which runs each holds.

A worker registers when it starts, beats every few seconds and leaves when it stops; one
killed stops beating and drops out of `live` once its heartbeat is older than the
staleness bound. Times come from the database's clock on PostgreSQL (`database_now`), so
workers on machines whose clocks disagree still agree on ages and leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from stepline.store import workers_sql as sql
from stepline.store.clock import database_now
from stepline.store.repository import Repository

FORGET_AFTER = timedelta(hours=1)
"""A registration not beaten for this long is deleted when another worker registers."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker says of itself when it registers."""

    id: str
    name: str
    host: str
    pid: int
    concurrency: int


@dataclass(frozen=True, slots=True)
class LiveWorker:
    info: WorkerInfo
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    run_ids: list[UUID]
    """The runs it holds a lease on, of the organization that asked."""


class WorkerRepository(Repository):
    """The worker registry (`GET /v1/workers`)."""

    async def register(self, info: WorkerInfo) -> None:
        """Add the worker, or refresh it; forget registrations long silent."""

        def op(conn: sa.Connection) -> None:
            now = database_now(conn)
            conn.execute(sql.FORGET_SILENT, {"silent_since": now - FORGET_AFTER})
            conn.execute(sql.DELETE, {"worker_id": info.id})
            conn.execute(
                sql.INSERT,
                {
                    "id": info.id,
                    "name": info.name,
                    "host": info.host,
                    "pid": info.pid,
                    "concurrency": info.concurrency,
                    "started_at": now,
                    "heartbeat_at": now,
                },
            )

        await self._write(op)

    async def beat(self, info: WorkerInfo) -> None:
        """The worker is alive now; registered again if it had been forgotten."""

        def op(conn: sa.Connection) -> bool:
            params = {"worker_id": info.id, "now": database_now(conn)}
            return conn.execute(sql.BEAT, params).rowcount == 1

        if not await self._write(op):
            await self.register(info)

    async def remove(self, worker_id: str) -> None:
        def op(conn: sa.Connection) -> None:
            conn.execute(sql.DELETE, {"worker_id": worker_id})

        await self._write(op)

    async def live(self, organization_id: UUID, *, stale_after_s: float) -> list[LiveWorker]:
        """Workers that beat within `stale_after_s`, oldest first, each with the runs of
        `organization_id` it holds (other organizations' runs are not theirs to see)."""

        def read(conn: sa.Connection) -> list[LiveWorker]:
            now = database_now(conn)
            since = now - timedelta(seconds=stale_after_s)
            rows = list(conn.execute(sql.LIVE, {"since": since}).mappings())
            held: dict[str, list[UUID]] = {row["id"]: [] for row in rows}
            if held:
                params = {"worker_ids": list(held), "organization_id": organization_id}
                owned = conn.execute(sql.HELD, params)
                for owner, run_id in owned:
                    held[owner].append(run_id)
            return [
                LiveWorker(
                    info=WorkerInfo(
                        row["id"], row["name"], row["host"], row["pid"], row["concurrency"]
                    ),
                    started_at=row["started_at"],
                    heartbeat_at=row["heartbeat_at"],
                    heartbeat_age_s=max((now - row["heartbeat_at"]).total_seconds(), 0.0),
                    run_ids=held[row["id"]],
                )
                for row in rows
            ]

        return await self._read(read)
