"""The processes of one fleet-bench repetition (`stepline serve`, `stepline worker`), a
PostgreSQL database of its own, and the CPU time they use."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from harness.procs import cpu_seconds

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"

STEPLINE = str(Path(sys.executable).parent / "stepline")


class Processes:
    """The `stepline` processes of one repetition, each logging to a file in its home."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        base = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
        self.env = {**base, "STEPLINE_HOME": str(home), "STEPLINE_LOG_LEVEL": "WARNING", **env}
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, label: str, *args: str) -> Path:
        log_path = self.home / f"{label}.log"
        with log_path.open("w") as out:
            process = subprocess.Popen(
                [STEPLINE, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append((label, process, log_path))
        return log_path

    def check_alive(self) -> None:
        for label, process, log_path in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited with {process.returncode}:\n{_tail(log_path)}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by the API process, the workers (summed) and the PostgreSQL
        server (whoever its clients are)."""
        used: dict[str, float] = {"postgres-server": postgres_cpu_seconds()}
        for label, process, _ in self.started:
            kind = label.split("-")[0]
            used[kind] = used.get(kind, 0.0) + cpu_seconds(process.pid)
        return used

    def logs(self) -> str:
        return "\n".join(f"--- {label}\n{_tail(path)}" for label, _, path in self.started)

    def stop(self) -> None:
        for _, process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process, _ in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def postgres_cpu_seconds() -> float:
    """CPU used so far by the PostgreSQL server: its live processes, plus what the
    postmaster collected from backends that exited. Other sessions' queries count too."""
    processes: dict[str, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            processes[stat.parent.name] = text.rsplit(")", 1)[1].split()
    ticks = 0
    for fields in processes.values():
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] not in processes:  # the postmaster: + its reaped children's
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    name = f"stepline_bench_fleet_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())
