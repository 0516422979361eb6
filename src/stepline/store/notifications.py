"""PostgreSQL LISTEN/NOTIFY: idle workers wake the moment a run becomes claimable.

Migration 0011 makes the database NOTIFY `stepline_runs` whenever a run row becomes
queued (a new run, a resumed parent, a decided review, a released run), from whichever
process wrote it. `listen_for_queued_runs` holds one connection LISTENing on it and calls
`wake` for each notification; a lost connection is opened again with a growing pause, and
`wake` is called once it is back (a notification may have been missed meanwhile). The
workers' slow poll stays as the fallback, and finds runs whose lease expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "stepline_runs"
CHECK_S = 2.0
"""How often the listening connection is checked for loss."""
MAX_BACKOFF_S = 10.0


async def _connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        timeout=10,
    )


async def listen_for_queued_runs(url: str, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Call `wake()` on every NOTIFY of a queued run until `stop` is set."""

    def notified(*_: Any) -> None:
        wake()

    backoff = 0.5
    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        try:
            conn = await _connect(url)
            await conn.add_listener(CHANNEL, notified)
            backoff = 0.5
            wake()  # what was queued while no one listened
            while not stop.is_set() and not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), CHECK_S)
                if not stop.is_set():
                    await conn.execute("SELECT 1")  # a lost connection shows here
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("LISTEN %s lost (%s); again in %.1fs", CHANNEL, exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
