"""The raw-SQLite floor: the least a durable step can cost, with nothing but `sqlite3`.

    raw_sqlite.py chain|fanout|read --size N [--warmup-size W]

WAL with synchronous=NORMAL (stepline's own setting), one INSERT (the step starts, with
its inputs) and one UPDATE (it completes, with its output) per step, each committed on
its own. The chain feeds each output to the next step; the fan-out writes its steps one
after another (a single connection, as any SQLite writer) and then the join, which reads
every leaf's output. `read` fills a run of N steps (untimed), then reads the first 100
steps without payloads and every step with payloads serialised as NDJSON.

Same protocol as the other case scripts: warm-up, `ready`, a line on stdin, one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE steps (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    inputs TEXT,
    outputs TEXT,
    started_at TEXT,
    completed_at TEXT
);
CREATE INDEX steps_by_run ON steps (run_id, seq);
"""
INSERT = (
    "INSERT INTO steps (id, run_id, step_id, seq, status, inputs, started_at)"
    " VALUES (?, ?, ?, ?, 'running', ?, ?)"
)
UPDATE = "UPDATE steps SET status = 'completed', outputs = ?, completed_at = ? WHERE id = ?"
FIRST_PAGE = (
    "SELECT id, step_id, seq, status, started_at, completed_at FROM steps"
    " WHERE run_id = ? ORDER BY seq LIMIT 100"
)
ALL_STEPS = "SELECT * FROM steps WHERE run_id = ? ORDER BY seq"
OUTPUTS = "SELECT outputs FROM steps WHERE run_id = ? ORDER BY seq"


@contextmanager
def database() -> Iterator[sqlite3.Connection]:
    with tempfile.TemporaryDirectory(prefix="raw-sqlite-") as folder:
        conn = sqlite3.connect(Path(folder) / "floor.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        try:
            yield conn
        finally:
            conn.close()


def now() -> str:
    return datetime.now(UTC).isoformat()


def step(conn: sqlite3.Connection, run_id: str, seq: int, inputs: Any, output: Any) -> None:
    """One durable step: recorded as started, then as completed, two commits."""
    step_uuid = str(uuid.uuid4())
    conn.execute("BEGIN")
    conn.execute(INSERT, (step_uuid, run_id, f"s{seq}", seq, json.dumps(inputs), now()))
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(UPDATE, (json.dumps(output), now(), step_uuid))
    conn.execute("COMMIT")


def chain(conn: sqlite3.Connection, size: int) -> None:
    run_id = str(uuid.uuid4())
    value = {"i": 0}
    for seq in range(size):
        output = {"i": value["i"] + 1}
        step(conn, run_id, seq, value, output)
        value = output


def fanout(conn: sqlite3.Connection, size: int) -> None:
    run_id = str(uuid.uuid4())
    for seq in range(size):
        step(conn, run_id, seq, {"i": seq}, {"i": seq})
    leaves = [json.loads(row[0]) for row in conn.execute(OUTPUTS, (run_id,))]
    step(conn, run_id, size, {"n": len(leaves)}, {"n": len(leaves)})


def fill(conn: sqlite3.Connection, size: int) -> str:
    """A finished run of `size` steps, written in one transaction (setup, not measured)."""
    run_id = str(uuid.uuid4())
    stamp = now()
    payload = json.dumps({"i": 0})
    rows = [
        (str(uuid.uuid4()), run_id, f"s{seq}", seq, "completed", payload, payload, stamp, stamp)
        for seq in range(size)
    ]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    return run_id


def first_page(conn: sqlite3.Connection, run_id: str) -> bytes:
    cursor = conn.execute(FIRST_PAGE, (run_id,))
    names = [d[0] for d in cursor.description]
    return json.dumps({"data": [dict(zip(names, row, strict=True)) for row in cursor]}).encode()


def whole_run(conn: sqlite3.Connection, run_id: str) -> int:
    """Every step with its payloads as NDJSON lines, in memory; returns how many."""
    cursor = conn.execute(ALL_STEPS, (run_id,))
    names = [d[0] for d in cursor.description]
    out = io.BytesIO()
    count = 0
    for row in cursor:
        record = dict(zip(names, row, strict=True))
        record["inputs"] = json.loads(record["inputs"])
        record["outputs"] = json.loads(record["outputs"])
        out.write((json.dumps(record) + "\n").encode())
        count += 1
    return count


def read(conn: sqlite3.Connection, size: int) -> dict[str, Any]:
    run_id = fill(conn, size)
    first_page(conn, run_id)
    _handshake()
    pages = []
    for _ in range(20):
        started = time.perf_counter()
        first_page(conn, run_id)
        pages.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    count = whole_run(conn, run_id)
    whole_s = time.perf_counter() - started
    pages.sort()
    return {"figures": {"first_page_ms": pages[len(pages) // 2], "steps_per_s": count / whole_s}}


def _handshake() -> None:
    gc.collect()  # the warm-up's garbage is not the timed run's to collect
    print("ready", flush=True)
    sys.stdin.readline()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["chain", "fanout", "read"])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--warmup-size", type=int, default=100)
    args = parser.parse_args()
    with database() as conn:
        if args.scenario == "read":
            result = read(conn, args.size)
        else:
            work = chain if args.scenario == "chain" else fanout
            work(conn, args.warmup_size)
            _handshake()
            started = time.perf_counter()
            work(conn, args.size)
            elapsed_ms = (time.perf_counter() - started) * 1000
            figures = (
                {"per_step_ms": elapsed_ms / args.size}
                if args.scenario == "chain"
                else {"wall_ms": elapsed_ms}
            )
            result = {"figures": figures, "info": {"run_ms": elapsed_ms}}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
