"""Everything a database holds, as bytes to search (for what must never be stored)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from stepline.store.tables import metadata


async def database_bytes(url: str) -> bytes:
    """SQLite: every byte of the file and its -wal/-shm; PostgreSQL: every row as text."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        path = Path(parsed.database)
        files = sorted(path.parent.glob(path.name + "*"))
        assert files, f"no database file at {path}"
        return b"".join(file.read_bytes() for file in files)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        rows = []
        for table in metadata.sorted_tables:
            rows += await conn.fetch(f"SELECT t::text AS row FROM {table.name} t")
        return "\n".join(row["row"] for row in rows).encode()
    finally:
        await conn.close()
