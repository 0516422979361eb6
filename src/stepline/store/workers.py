"""The fleet's registry: which workers are alive, how busy, and which runs each holds.

A worker registers when it starts, beats every few seconds and leaves when it stops; one
killed stops beating and drops out of `live_workers` once its heartbeat is older than the
staleness bound. Times come from the database's clock on PostgreSQL (`database_now`), so
workers on machines whose clocks disagree still agree on ages and leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from stepline.records import RunStatus, utcnow
from stepline.store.base import StoreBase
from stepline.store.tables import runs, workers

FORGET_AFTER = timedelta(hours=1)
"""A registration not beaten for this long is deleted when another worker registers."""


def database_now(conn: sa.Connection) -> datetime:
    """Now, by the database's clock on PostgreSQL (the one every worker shares); on SQLite,
    a database on this machine, this process's clock is the database's."""
    if conn.dialect.name == "postgresql":
        now: datetime = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        return now
    return utcnow()


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


class WorkerVerbs(StoreBase):
    """The worker registry (`GET /v1/workers`)."""

    async def register_worker(self, info: WorkerInfo) -> None:
        """Add the worker, or refresh it; forget registrations long silent."""

        def op(conn: sa.Connection) -> None:
            now = database_now(conn)
            conn.execute(workers.delete().where(workers.c.heartbeat_at < now - FORGET_AFTER))
            conn.execute(workers.delete().where(workers.c.id == info.id))
            conn.execute(
                workers.insert().values(
                    id=info.id,
                    name=info.name,
                    host=info.host,
                    pid=info.pid,
                    concurrency=info.concurrency,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

        await self.writer.submit(op)

    async def beat_worker(self, info: WorkerInfo) -> None:
        """The worker is alive now; registered again if it had been forgotten."""

        def op(conn: sa.Connection) -> bool:
            now = database_now(conn)
            update = workers.update().where(workers.c.id == info.id).values(heartbeat_at=now)
            return conn.execute(update).rowcount == 1

        if not await self.writer.submit(op):
            await self.register_worker(info)

    async def remove_worker(self, worker_id: str) -> None:
        def op(conn: sa.Connection) -> None:
            conn.execute(workers.delete().where(workers.c.id == worker_id))

        await self.writer.submit(op)

    async def live_workers(
        self, organization_id: UUID, *, stale_after_s: float
    ) -> list[LiveWorker]:
        """Workers that beat within `stale_after_s`, oldest first, each with the runs of
        `organization_id` it holds (other organizations' runs are not theirs to see)."""

        def read(conn: sa.Connection) -> list[LiveWorker]:
            now = database_now(conn)
            since = now - timedelta(seconds=stale_after_s)
            rows = list(
                conn.execute(
                    sa.select(workers)
                    .where(workers.c.heartbeat_at >= since)
                    .order_by(workers.c.started_at, workers.c.id)
                ).mappings()
            )
            held: dict[str, list[UUID]] = {row["id"]: [] for row in rows}
            if held:
                owned = conn.execute(
                    sa.select(runs.c.lease_owner, runs.c.id)
                    .where(
                        runs.c.lease_owner.in_(list(held)),
                        runs.c.organization_id == organization_id,
                        runs.c.status == RunStatus.running.value,
                    )
                    .order_by(runs.c.created_at, runs.c.id)
                )
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
