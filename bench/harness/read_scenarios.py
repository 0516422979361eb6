"""read-10k, api-steps and memory: a finished big run read back through each system's API.

stepline: the run is made once by the engine (bench/cases/stepline_seed.py) in a home that
a fresh `stepline serve` opens for each repetition; the repetition reads the first page
and the NDJSON download, notes the server's peak RSS (memory), then loads the first-page
route with wrk (api-steps). Peers: DBOS reads its system database in a fresh process each
repetition; Prefect reads through its client against a fresh server on the seeded home.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import peer_systems
from harness.engine_scenarios import stepline_env
from harness.loadgen import wrk
from harness.model import FIRST_PAGE, P50, P99, PEAK_RSS, REQUESTS, WHOLE_RUN, CaseResult, Series
from harness.plan import Bench
from harness.prefect_server import PrefectServer
from harness.procs import free_port, run_case
from harness.repeat import System, case, keys, repeat
from harness.stepline_server import SeededRun, StepLineServer, read_back, steps_url

READS = (FIRST_PAGE, WHOLE_RUN)
LOAD = (REQUESTS, P50, P99)
METRICS = (*READS, PEAK_RSS, *LOAD)
SCENARIO_OF = {PEAK_RSS.key: "memory", REQUESTS.key: "api-steps", P50.key: "api-steps"}
SCENARIO_OF[P99.key] = "api-steps"


def run(bench: Bench, *, reads: bool, api: bool) -> list[Series]:
    """Read back (reads: read-10k and memory rows) and/or load the steps route (api)."""
    systems: list[System] = []
    if reads:
        systems.append(raw_sqlite(bench))
    systems.append(stepline(bench, reads=reads, api=api))
    if reads and bench.peers_python is not None:
        systems.append(dbos(bench, "dbos-sqlite"))
        if peer_systems.postgres_reachable():
            systems.append(dbos(bench, "dbos-postgres"))
        systems.append(prefect(bench))
    series = repeat(bench, "read-10k", METRICS, systems)
    for one in series:
        one.scenario = SCENARIO_OF.get(one.metric.key, one.scenario)
        one.baseline = one.baseline and one.scenario == "read-10k"
    return series


def raw_sqlite(bench: Bench) -> System:
    size = str(bench.sizes.read)
    argv = [bench.python, bench.script("baselines/raw_sqlite.py"), "read", "--size", size]
    return case("raw-sqlite", lambda _rep: argv, baseline=True, reports=READS)


def once(make: Callable[[], Any]) -> Callable[[], Any]:
    """`make()` the first time, its result (or its exception again) afterwards."""
    made: list[Any] = []

    def get() -> Any:
        if not made:
            try:
                made.append(make())
            except Exception as exc:
                made.append(exc)
        if isinstance(made[0], Exception):
            raise made[0]
        return made[0]

    return get


def stepline(bench: Bench, *, reads: bool, api: bool) -> System:
    seeded = once(lambda: seed_stepline(bench))

    def measure(_rep: int) -> CaseResult:
        run: SeededRun = seeded()
        server = StepLineServer(run.home)
        figures: dict[str, float] = {}
        info: dict[str, object] = {}
        try:
            if reads:
                figures.update(read_back(server, run))
                figures[PEAK_RSS.key] = server.peak_rss_mb()
            if api:
                figures.update(load(bench, server, run, info))
        finally:
            server.stop()
        return CaseResult(figures, info)

    reported = ((*READS, PEAK_RSS) if reads else ()) + (LOAD if api else ())
    return System("stepline", measure, reports=keys(reported))


def seed_stepline(bench: Bench) -> SeededRun:
    home = bench.workdir / "stepline-read"
    size = bench.sizes.read
    bench.say(f"read-10k: seeding a {size:,}-step stepline run")
    argv = [bench.python, bench.script("cases/stepline_seed.py"), "--home", str(home)]
    info = run_case([*argv, "--size", str(size)], env=stepline_env(bench)).info
    bench.notes.append(f"read-10k / stepline: seeded {size:,} steps in {info['seed_s']:.1f} s")
    return SeededRun(
        home, str(info["workflow_id"]), str(info["run_id"]), str(info["api_key"]), size
    )


def load(
    bench: Bench, server: StepLineServer, run: SeededRun, info: dict[str, object]
) -> Mapping[str, float]:
    url = steps_url(server, run)
    clients = bench.sizes.api_clients
    wrk(url, clients=clients, seconds=1, headers=run.headers)  # warm-up
    figures = wrk(url, clients=clients, seconds=bench.sizes.api_seconds, headers=run.headers)
    info["socket_errors"] = figures.pop("socket_errors")
    return figures


def dbos(bench: Bench, name: str) -> System:
    assert bench.peers_python is not None
    size = bench.sizes.read
    if name == "dbos-sqlite":
        url = f"sqlite:///{bench.workdir / 'dbos-read.sqlite'}"
    else:
        url = f"{peer_systems.POSTGRES}/{peer_systems.database_name('read', 'seed')}"
    script = [str(bench.peers_python), bench.script("peers/dbos_bench.py")]

    def seed() -> str:
        bench.say(f"read-10k: seeding a {size:,}-step {name} workflow")
        fresh = ["--fresh"] if name == "dbos-postgres" else []
        info = run_case([*script, "seed", "--size", str(size), "--db", url, *fresh]).info
        bench.notes.append(f"read-10k / {name}: seeded {size:,} steps in {info['seed_s']:.1f} s")
        return str(info["workflow_id"])

    workflow_id = once(seed)

    def argv(_rep: int) -> Sequence[str]:
        return [*script, "read", "--workflow-id", workflow_id(), "--db", url]

    def after(rep: int) -> None:
        if name == "dbos-postgres" and rep == bench.sizes.reps - 1:
            subprocess.run([*script, "drop", "--db", url], capture_output=True, check=True)

    return case(name, argv, after=after, reports=(*READS, PEAK_RSS))


def prefect(bench: Bench) -> System:
    assert bench.peers_python is not None
    python = bench.peers_python
    home = Path(bench.workdir / "prefect-read")
    port = free_port()
    size = bench.sizes.read
    script = [str(python), bench.script("peers/prefect_bench.py")]
    servers: list[PrefectServer] = []

    def seed() -> str:
        bench.say(f"read-10k: seeding a {size:,}-task Prefect flow run (slow: Prefect's pace)")
        server = PrefectServer(python, home, port)
        try:
            server.wait_idle()
            info = run_case([*script, "seed", "--size", str(size)], env=server.client_env()).info
            server.wait_idle()
        finally:
            server.stop()
        bench.notes.append(f"read-10k / prefect: seeded {size:,} tasks in {info['seed_s']:.1f} s")
        return str(info["flow_run_id"])

    flow_run_id = once(seed)

    def before(_rep: int) -> None:
        flow_run_id()
        servers.append(PrefectServer(python, home, port))
        servers[-1].wait_idle()

    def after(_rep: int) -> Mapping[str, float] | None:
        if not servers:
            return None
        server = servers.pop()
        peak = server.peak_rss_mb()  # Prefect's memory is its server's
        server.stop()
        return {PEAK_RSS.key: peak}

    def argv(_rep: int) -> Sequence[str]:
        return [*script, "read", "--flow-run-id", flow_run_id(), "--size", str(size)]

    def idle() -> None:
        servers[-1].wait_idle()

    env = PrefectServer.env_for(home, port)
    return case(
        "prefect",
        argv,
        env=env,
        before=before,
        after=after,
        before_timing=idle,
        reports=(*READS, PEAK_RSS),
    )
