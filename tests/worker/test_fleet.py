"""Several `stepline worker` processes on one PostgreSQL, with an API process of its own:
a drained worker releases what it holds, and a fleet survives kill -9 and SIGTERM in the
middle of a batch with every step done once and never on two workers at once."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from support.fleet import Fleet, fleet
from support.http_server import Reply, loopback_server
from support.private_postgres import private_postgres
from support.server import make_key

pytestmark = pytest.mark.slow


def effect(node: str, url: str) -> dict[str, Any]:
    """An api_call whose request the effects server counts per (run, node)."""
    return {
        "id": node,
        "type": "api_call",
        "config": {
            "method": "POST",
            "url": f"{url}/effect",
            "json": {"run": "{{ run.id }}", "node": node},
        },
    }


class Effects:
    """Counts each (run, node)'s requests, and any two of one key in flight at once."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.hits: Counter[tuple[str, str]] = Counter()
        self.active: Counter[tuple[str, str]] = Counter()
        self.overlaps: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, _n: int, body: Any) -> Reply:
        key = (body["run"], body["node"])
        with self.lock:
            self.hits[key] += 1
            self.active[key] += 1
            if self.active[key] > 1:
                self.overlaps.append(key)
        time.sleep(self.delay_s)
        with self.lock:
            self.active[key] -= 1
        return 200, {}, {"ok": True}


def test_sigterm_drains_a_worker_and_another_resumes_its_run(tmp_path: Path) -> None:
    held = threading.Event()
    reached = threading.Event()

    def hold(n: int, _body: Any) -> Reply:
        if n == 1:  # the first attempt hangs: the worker is drained while it waits
            reached.set()
            held.wait(60)
        return 200, {}, {"attempt": n}

    def ok(_n: int, _body: Any) -> Reply:
        return 200, {}, {}

    with (
        loopback_server({"/hold": hold, "/after": ok}) as server,
        fleet(tmp_path, "drain") as crew,
    ):
        workflow_id = crew.create_workflow(
            {
                "name": "drain",
                "nodes": [
                    {"id": "hold", "type": "api_call", "config": {"url": f"{server.url}/hold"}},
                    {"id": "after", "type": "api_call", "config": {"url": f"{server.url}/after"}},
                ],
                "edges": [{"from": "hold", "to": "after"}],
            }
        )
        first = crew.start_worker("first", "--grace-s", "0.5")
        (run_id,) = crew.start_runs(workflow_id, 1)
        assert reached.wait(30), first.log()

        first.terminate()
        assert first.process.wait(20) == 0, first.log()
        assert "drained" in first.log()
        # Released, not failed: queued again with no lease, for another worker.
        run = crew.run(workflow_id, run_id)
        assert run["status"] == "queued", run
        assert run["lease_owner"] is None

        second = crew.start_worker("second")
        crew.wait_settled(workflow_id, [run_id], timeout_s=60)
        held.set()
        run = crew.run(workflow_id, run_id)
        assert run["status"] == "completed", (run, second.log())
        hold_step, after_step = crew.steps(workflow_id, run_id)
        assert hold_step["step_id"] == "hold" and hold_step["retry_count"] == 1
        assert [a["status"] for a in hold_step["attempts"]] == ["error", "completed"]
        assert hold_step["step_metadata"]["worker"].startswith("second:")
        assert after_step["step_metadata"]["worker"].startswith("second:")
        assert server.hit_count("/after") == 1


@pytest.mark.timeout(480)
def test_a_fleet_survives_kill_9_and_sigterm_mid_batch(tmp_path: Path) -> None:
    effects = Effects(delay_s=0.02)
    with (
        loopback_server({"/effect": effects}) as server,
        fleet(tmp_path, "chaos", STEPLINE_LEASE_S="2") as crew,
    ):
        # Ten steps with a parallel section: a, then b1..b4 at once, then c..g in a chain.
        nodes = [effect(node, server.url) for node in ("a", "b1", "b2", "b3", "b4")]
        nodes += [effect(node, server.url) for node in ("c", "d", "e", "f", "g")]
        edges = [{"from": "a", "to": f"b{i}"} for i in range(1, 5)]
        edges += [{"from": f"b{i}", "to": "c"} for i in range(1, 5)]
        edges += [{"from": x, "to": y} for x, y in zip("cdef", "defg", strict=True)]
        workflow_id = crew.create_workflow({"name": "chaos", "nodes": nodes, "edges": edges})

        workers = [crew.start_worker(f"w{i}", "--concurrency", "4") for i in (1, 2, 3)]
        started = time.monotonic()
        run_ids = crew.start_runs(workflow_id, 300)
        print(f"queued in {time.monotonic() - started:.1f}s; hits {sum(effects.hits.values())}")
        deadline = time.monotonic() + 120
        while sum(effects.hits.values()) < 300 * 10 // 3:  # a third of the way
            assert time.monotonic() < deadline, [w.log()[-2000:] for w in workers]
            time.sleep(0.1)
        workers[0].kill()  # kill -9: its leases expire (2 s) and others resume its runs
        workers[1].terminate()  # SIGTERM: drains, releases, exits 0
        assert workers[1].process.wait(60) == 0, workers[1].log()

        print(f"chaos at {time.monotonic() - started:.1f}s")
        crew.wait_settled(workflow_id, run_ids, timeout_s=300)
        print(f"settled at {time.monotonic() - started:.1f}s")
        with ThreadPoolExecutor(8) as pool:
            finished = list(pool.map(lambda run_id: crew.run(workflow_id, run_id), run_ids))
            all_steps = list(pool.map(lambda run_id: crew.steps(workflow_id, run_id), run_ids))
        statuses = Counter(run["status"] for run in finished)
        unfinished = [  # why, should a run not complete
            (run, [s for s in steps if s["status"] != "completed"])
            for run, steps in zip(finished, all_steps, strict=True)
            if run["status"] != "completed"
        ]
        assert statuses == {"completed": 300}, unfinished

        assert effects.overlaps == [], "a step ran on two workers at once"
        resumed = 0
        for run_id, steps in zip(run_ids, all_steps, strict=True):
            assert len(steps) == 10
            for step in steps:
                attempts = step["attempts"]
                hits = effects.hits[(run_id, step["node_id"])]
                # Completed once; run again only where an attempt was cut short.
                assert [a["status"] for a in attempts].count("completed") == 1, step
                assert 1 <= hits <= len(attempts), (step, hits)
                resumed += len(attempts) > 1
        # The killed and the drained worker held runs in flight: some steps ran again.
        assert resumed > 0
        survivors = {s["step_metadata"]["worker"].split(":")[0] for s in steps}
        assert survivors <= {"w1", "w2", "w3"}


@pytest.mark.timeout(300)
def test_a_postgres_restart_mid_batch_loses_nothing(tmp_path: Path) -> None:
    effects = Effects(delay_s=0.01)
    with (
        private_postgres() as database,
        loopback_server({"/effect": effects}) as server,
        fleet(tmp_path, "restart", database_url=database.url) as crew,
    ):
        chain = ("a", "b", "c", "d", "e")
        nodes = [effect(node, server.url) for node in chain]
        edges = [{"from": x, "to": y} for x, y in itertools.pairwise(chain)]
        workflow_id = crew.create_workflow({"name": "restart", "nodes": nodes, "edges": edges})
        for name in ("w1", "w2"):
            crew.start_worker(name, "--concurrency", "4")
        run_ids = crew.start_runs(workflow_id, 60)
        deadline = time.monotonic() + 120
        while sum(effects.hits.values()) < 60 * len(chain) // 3:
            assert time.monotonic() < deadline, [w.log()[-2000:] for w in crew.workers]
            time.sleep(0.05)

        database.stop()
        # While the database is away the API says so, and when to come back.
        away = crew.http.get(f"/v1/workflows/{workflow_id}/runs/{run_ids[0]}")
        assert away.status_code == 503, away.text
        assert away.headers["retry-after"].isdigit()
        assert away.json()["error"]["code"] == "unavailable"
        time.sleep(2)
        database.start()

        crew.wait_settled(workflow_id, run_ids, timeout_s=180)
        assert all(crew.run(workflow_id, r)["status"] == "completed" for r in run_ids)
        assert effects.overlaps == []
        for run_id in run_ids:
            steps = crew.steps(workflow_id, run_id)
            assert [s["node_id"] for s in steps] == list(chain)
            for step in steps:
                attempts = step["attempts"]
                assert [a["status"] for a in attempts].count("completed") == 1, step
                assert 1 <= effects.hits[(run_id, step["node_id"])] <= len(attempts), step
        assert all(w.process.poll() is None for w in crew.workers), "a worker died"


def workers_of(crew: Fleet, key: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = crew.http.get("/v1/workers", headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_get_workers_lists_the_live_fleet_and_each_ones_runs(tmp_path: Path) -> None:
    release = threading.Event()

    def hold(_n: int, _body: Any) -> Reply:
        release.wait(60)
        return 200, {}, {}

    with (
        loopback_server({"/hold": hold}) as server,
        fleet(tmp_path, "registry", STEPLINE_LEASE_S="3") as crew,
    ):
        workflow_id = crew.create_workflow(
            {
                "name": "held",
                "nodes": [
                    {"id": "hold", "type": "api_call", "config": {"url": f"{server.url}/hold"}}
                ],
            }
        )
        busy = crew.start_worker("busy", "--concurrency", "3")
        idle = crew.start_worker("idle", "--concurrency", "1")
        wait_for(lambda: len(workers_of(crew)) == 2, "both workers register")
        # Queued after both registered; the idle one has one slot and may claim it too.
        (run_id,) = crew.start_runs(workflow_id, 1)
        wait_for(lambda: server.hit_count("/hold") == 1, "the run starts")

        listed = {w["name"]: w for w in workers_of(crew)}
        assert set(listed) == {"busy", "idle"}
        holder = next(w for w in listed.values() if w["run_ids"])
        assert holder["run_ids"] == [run_id]
        assert holder["pid"] in (busy.process.pid, idle.process.pid)
        assert {w["concurrency"] for w in listed.values()} == {3, 1}
        assert all(0 <= w["heartbeat_age_s"] < 3 for w in listed.values())
        assert all(w["id"].startswith(f"{w['name']}:") for w in listed.values())
        steps = crew.steps(workflow_id, run_id)
        assert steps[0]["step_metadata"]["worker"] == holder["id"]

        # Another organization's admin sees the fleet, not this organization's runs.
        stranger = make_key(crew.database_url, "stranger")
        assert all(w["run_ids"] == [] for w in workers_of(crew, stranger))
        reader = make_key(crew.database_url, "default", scopes=("read",))
        assert (
            crew.http.get("/v1/workers", headers={"Authorization": f"Bearer {reader}"}).status_code
            == 403
        )

        # A drained worker leaves at once; a killed one when its heartbeat goes stale.
        other = idle if holder["name"] == "busy" else busy
        other.terminate()
        assert other.process.wait(20) == 0, other.log()
        assert [w["name"] for w in workers_of(crew)] == [holder["name"]]
        release.set()
        crew.wait_settled(workflow_id, [run_id], timeout_s=30)
        next(w for w in crew.workers if w.name == holder["name"]).kill()
        wait_for(lambda: workers_of(crew) == [], "a killed worker drops out", timeout_s=15)


def test_an_idle_worker_wakes_on_notify_not_on_its_poll(tmp_path: Path) -> None:
    with fleet(tmp_path, "notify", STEPLINE_WORKER_POLL_S="60") as crew:
        workflow_id = crew.create_workflow(
            {"name": "quick", "nodes": [{"id": "a", "type": "reshape", "config": {"output": 1}}]}
        )
        crew.start_worker("sleepy", "--concurrency", "2")
        wait_for(lambda: len(workers_of(crew)) == 1, "the worker registers")
        time.sleep(1)  # past its first claims: from now on only a wake-up or its poll
        for _ in range(3):
            started = time.monotonic()
            (run_id,) = crew.start_runs(workflow_id, 1)
            crew.wait_settled(workflow_id, [run_id], timeout_s=30)
            assert time.monotonic() - started < 10, "woken by its 60 s poll, not by NOTIFY"
            assert crew.run(workflow_id, run_id)["status"] == "completed"


class Slots:
    """Counts, per workflow, the requests in flight at once, and the most there ever were."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.active: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, _n: int, body: Any) -> Reply:
        workflow = body["workflow"]
        with self.lock:
            self.active[workflow] += 1
            self.most[workflow] = max(self.most[workflow], self.active[workflow])
        time.sleep(self.delay_s)
        with self.lock:
            self.active[workflow] -= 1
        return 200, {}, {}


def most_overlapping(intervals: list[tuple[str, str]]) -> int:
    """The most intervals (ISO start, end) that held at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, change in events:  # at equal times an end (-1) sorts before a start
        current += change
        most = max(most, current)
    return most


def test_a_workflows_concurrency_holds_across_the_fleet(tmp_path: Path) -> None:
    slots = Slots(delay_s=0.3)
    with (
        loopback_server({"/slot": slots}) as server,
        fleet(tmp_path, "limits") as crew,
    ):

        def workflow(name: str, **extra: Any) -> str:
            call = {
                "id": "call",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": f"{server.url}/slot",
                    "json": {"workflow": name},
                },
            }
            return crew.create_workflow({"name": name, "nodes": [call], **extra})

        limited = workflow("limited", concurrency=2)
        free = workflow("free")
        # One run at a time per worker: two limited runs at once are two workers' doing.
        for name in ("w1", "w2", "w3"):
            crew.start_worker(name, "--concurrency", "1")
        wait_for(lambda: len(workers_of(crew)) == 3, "three workers register")
        limited_runs = crew.start_runs(limited, 12)
        crew.wait_settled(limited, limited_runs, timeout_s=120)

        finished = [crew.run(limited, run_id) for run_id in limited_runs]
        assert {run["status"] for run in finished} == {"completed"}
        assert {run["concurrency_limit"] for run in finished} == {2}
        assert most_overlapping([(r["started_at"], r["completed_at"]) for r in finished]) <= 2
        assert slots.most["limited"] == 2, slots.most  # the limit, reached by two workers
        workers = {
            crew.steps(limited, run_id)[0]["step_metadata"]["worker"].split(":")[0]
            for run_id in limited_runs
        }
        assert len(workers) >= 2, workers

        # Another workflow is not held to it: all three workers run its runs at once.
        free_runs = crew.start_runs(free, 6)
        crew.wait_settled(free, free_runs, timeout_s=60)
        assert slots.most["free"] == 3, slots.most
