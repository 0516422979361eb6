"""The one clock that leases and heartbeats are measured by.

On PostgreSQL it is the database's: workers on machines whose clocks disagree still agree
on when a lease expires and how old a heartbeat is. On SQLite, a database on this machine,
this process's clock is the database's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from stepline.records import utcnow

_NOW = sa.select(sa.func.clock_timestamp())


def database_now(conn: sa.Connection) -> datetime:
    if conn.dialect.name == "postgresql":
        now: datetime = conn.execute(_NOW).scalar_one()
        return now
    return utcnow()


def lease_times(conn: sa.Connection, lease_s: float) -> dict[str, Any]:
    """`now` and `lease_until` (now + lease_s) by the database's clock, as claim and renew
    statements take them."""
    now = database_now(conn)
    return {"now": now, "lease_until": now + timedelta(seconds=lease_s)}
