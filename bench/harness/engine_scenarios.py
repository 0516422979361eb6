"""chain-100, fanout-1000 and code-100: whole runs timed inside a fresh process each."""

from __future__ import annotations

import os
from contextlib import ExitStack

from harness import peer_systems
from harness.model import PER_STEP, WALL, Series
from harness.plan import Bench
from harness.repeat import System, case, repeat


def stepline_env(bench: Bench) -> dict[str, str]:
    """No STEPLINE_* setting of the caller's leaks in; the home is the case's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    env["STEPLINE_HOME"] = str(bench.workdir / "stepline-home")
    return env


def stepline(bench: Bench, kind: str, size: int, *, isolation: str | None = None) -> System:
    """stepline's case; `isolation` names a STEPLINE_CODE_ISOLATION to run it with."""
    argv = [
        bench.python,
        bench.script("cases/stepline_engine.py"),
        kind,
        "--size",
        str(size),
        "--warmup-size",
        str(bench.warmup(size)),
    ]
    if isolation is None:
        return case("stepline", lambda _rep: argv, env=stepline_env(bench))
    env = {**stepline_env(bench), "STEPLINE_CODE_ISOLATION": isolation}
    return case(f"stepline ({isolation} isolation)", lambda _rep: argv, env=env)


def raw_sqlite(bench: Bench, kind: str, size: int) -> System:
    argv = [
        bench.python,
        bench.script("baselines/raw_sqlite.py"),
        kind,
        "--size",
        str(size),
        "--warmup-size",
        str(bench.warmup(size)),
    ]
    return case("raw-sqlite", lambda _rep: argv, baseline=True)


def fresh_process(bench: Bench, size: int) -> System:
    argv = [bench.python, bench.script("baselines/fresh_process.py"), "--size", str(size)]
    return case("fresh-process", lambda _rep: argv, baseline=True)


def chain(bench: Bench) -> list[Series]:
    return _with_peers(bench, "chain-100", "chain", bench.sizes.chain)


def fanout(bench: Bench) -> list[Series]:
    return _with_peers(bench, "fanout-1000", "fanout", bench.sizes.fanout)


def code(bench: Bench) -> list[Series]:
    size = bench.sizes.code
    # The sandbox's price: the same run with process isolation only, side by side.
    systems = [
        fresh_process(bench, size),
        stepline(bench, "code", size),
        stepline(bench, "code", size, isolation="process"),
    ]
    return repeat(bench, "code-100", [PER_STEP], systems)


def _with_peers(bench: Bench, scenario: str, kind: str, size: int) -> list[Series]:
    metric = PER_STEP if kind == "chain" else WALL
    systems: list[System] = [raw_sqlite(bench, kind, size), stepline(bench, kind, size)]
    with ExitStack() as stack:
        if bench.peers_python is not None:
            systems += peer_systems.engine_peers(bench, kind, size)
            server = stack.enter_context(peer_systems.prefect_server(bench, scenario))
            systems.append(peer_systems.prefect(bench, server, kind, size))
        return repeat(bench, scenario, [metric], systems)
