"""The peers as bench systems: DBOS on SQLite and on PostgreSQL, Prefect with its server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.plan import Bench
from harness.prefect_server import PrefectServer
from harness.repeat import System, case

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def dbos_sqlite(bench: Bench, scenario: str, size: int) -> System:
    def argv(rep: int) -> Sequence[str]:
        db = bench.workdir / f"dbos-{scenario}-{rep}.sqlite"
        return _dbos(bench, scenario, size, f"sqlite:///{db}")

    return case("dbos-sqlite", argv)


def dbos_postgres(bench: Bench, scenario: str, size: int) -> System:
    def argv(rep: int) -> Sequence[str]:
        url = f"{POSTGRES}/{database_name(scenario, rep)}"
        return [*_dbos(bench, scenario, size, url), "--fresh", "--drop"]

    return case("dbos-postgres", argv)


def database_name(scenario: str, rep: int | str) -> str:
    return f"stepline_bench_{os.getpid()}_{scenario}_{rep}"


def _dbos(bench: Bench, scenario: str, size: int, url: str) -> list[str]:
    assert bench.peers_python is not None
    return [
        str(bench.peers_python),
        bench.script("peers/dbos_bench.py"),
        scenario,
        "--size",
        str(size),
        "--warmup-size",
        str(bench.warmup(size)),
        "--db",
        url,
    ]


def prefect(bench: Bench, server: PrefectServer, scenario: str, size: int) -> System:
    assert bench.peers_python is not None
    argv = [
        str(bench.peers_python),
        bench.script("peers/prefect_bench.py"),
        scenario,
        "--size",
        str(size),
        "--warmup-size",
        str(bench.warmup(size)),
    ]
    return case(
        "prefect", lambda _rep: argv, env=server.client_env(), before_timing=server.wait_idle
    )


@contextmanager
def prefect_server(bench: Bench, name: str) -> Iterator[PrefectServer]:
    """A fresh Prefect server for one scenario, idle before it is first used."""
    assert bench.peers_python is not None
    bench.say(f"{name}: starting a Prefect server")
    server = PrefectServer(bench.peers_python, Path(bench.workdir / f"prefect-{name}"))
    try:
        server.wait_idle()
        yield server
    finally:
        server.stop()


def engine_peers(bench: Bench, scenario: str, size: int) -> list[System]:
    """DBOS systems for a chain or fan-out scenario (Prefect needs its server: see above)."""
    systems = [dbos_sqlite(bench, scenario, size)]
    if postgres_reachable():
        systems.append(dbos_postgres(bench, scenario, size))
    else:
        bench.notes.append("dbos-postgres skipped: nothing listens on 127.0.0.1:5432")
    return systems
