"""A PostgreSQL server of the test's own (initdb, pg_ctl), on a free port: one that a test
may stop and restart without touching the shared server other tests use."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.server import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    # initdb and postgres refuse to run as root; the machine's `postgres` user runs them.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
    )


@dataclass
class PrivatePostgres:
    data: Path
    port: int
    pg_ctl: str

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        done = _as_postgres(self.pg_ctl, "-D", str(self.data), "-w", "-t", "60", *args)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new, running PostgreSQL cluster (trust auth), removed afterwards."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        if os.environ.get("STEPLINE_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL's initdb and pg_ctl are required but missing", pytrace=False)
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    root = Path(tempfile.mkdtemp(prefix="stepline-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        root.chmod(0o755)
    done = _as_postgres(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    assert done.returncode == 0, done.stdout + done.stderr
    server = PrivatePostgres(data, free_port(), pg_ctl)
    server.start()
    try:
        yield server
    finally:
        _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
