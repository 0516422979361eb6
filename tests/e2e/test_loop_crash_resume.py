"""kill -9 `stepline serve` while a `for_each` runs 4 iterations at once; restart; resume.

A loopback server records which item each iteration's `api_call` sent: a completed
iteration that ran again would show its item twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.http_server import loopback_server
from support.server import ServeProcess, start_server

pytestmark = pytest.mark.slow

ITEMS = list(range(8))
FAST = {0, 1}  # answered at once before the kill; every other item waits for the kill
LEASE_S = "2"


def wait_until(what: str, test: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = test()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def steps_by_id(http: httpx.Client, workflow_id: str, run_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/workflows/{workflow_id}/runs/{run_id}/steps", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {step["step_id"]: step for step in response.json()["data"]}


def test_kill_9_during_a_concurrent_for_each_resumes_without_rerunning_iterations(
    tmp_path: Path,
) -> None:
    seen: Counter[int] = Counter()
    lock = threading.Lock()
    killed = threading.Event()

    def work(_n: int, body: Any) -> tuple[int, dict[str, str], Any]:
        item = body["item"]
        with lock:
            seen[item] += 1
        if item not in FAST and not killed.is_set():
            killed.wait(60)  # in flight when the server dies
        return 200, {}, {"done": item}

    home = tmp_path / "home"
    env = {"STEPLINE_LEASE_S": LEASE_S}
    with loopback_server({"/work": work}) as counter:
        definition = {
            "name": "loop-crash",
            "nodes": [
                {
                    "id": "each",
                    "type": "for_each",
                    "config": {"items": ITEMS, "concurrency": 4},
                    "body": {
                        "nodes": [
                            {
                                "id": "work",
                                "type": "api_call",
                                "config": {
                                    "method": "POST",
                                    "url": f"{counter.url}/work",
                                    "json": {"item": "{{ loop.item }}"},
                                },
                            }
                        ],
                        "output": "{{ nodes.work.output.body.done }}",
                    },
                },
                {"id": "total", "type": "reshape", "config": {"output": "{{ nodes.each.output }}"}},
            ],
            "edges": [{"from": "each", "to": "total"}],
        }
        first: ServeProcess = start_server(home, env=env)
        second: ServeProcess | None = None
        try:
            key = first.admin_key
            assert key, first.log()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as http:
                created = http.post("/v1/workflows", json=definition)
                assert created.status_code == 201, created.text
                workflow_id = created.json()["id"]
                started = http.post(f"/v1/workflows/{workflow_id}/runs", json={"inputs": {}})
                assert started.status_code == 202, started.text
                run_id = started.json()["id"]

                # 0 and 1 complete; 2..5 are then in flight (4 at once), 6 and 7 not started.
                def fast_done() -> bool:
                    steps = steps_by_id(http, workflow_id, run_id)
                    return all(
                        steps.get(f"each_iter_{i}_work", {}).get("status") == "completed"
                        for i in FAST
                    )

                wait_until("the fast iterations completed", fast_done)
                wait_until("4 iterations are in flight", lambda: set(seen) == {0, 1, 2, 3, 4, 5})
                before = steps_by_id(http, workflow_id, run_id)
            first.kill()  # SIGKILL: no cleanup; the run's lease is left to expire
            killed.set()
            interrupted = sorted(
                i for i in ITEMS if before.get(f"each_iter_{i}_work", {}).get("status") == "running"
            )
            assert interrupted == [2, 3, 4, 5], {k: v["status"] for k, v in before.items()}
            assert before["each"]["status"] == "running"

            second = start_server(home, env=env)
            with httpx.Client(base_url=second.base_url, headers=headers, timeout=30) as http:
                run_url = f"/v1/workflows/{workflow_id}/runs/{run_id}"

                def ended() -> Any:
                    run = http.get(run_url).json()
                    return run if run["status"] in {"completed", "failed", "cancelled"} else None

                run = wait_until("the resumed run ended", ended, timeout_s=90)
                steps = steps_by_id(http, workflow_id, run_id)
        finally:
            killed.set()
            if first.process.poll() is None:
                first.kill()
            if second is not None:
                second.stop()

    assert run["status"] == "completed", (run, second.log() if second else "")
    assert run["attempt"] == 2
    assert steps["total"]["outputs"] == ITEMS, "the loop's output keeps the item order"
    for item in ITEMS:
        step = steps[f"each_iter_{item}_work"]
        assert step["status"] == "completed", step
        assert step["loop_id"] == "each" and step["iteration"] == item
        if item in interrupted:
            assert seen[item] == 2, f"item {item}: interrupted, so sent again once"
            assert step["retry_count"] == 1, step
            assert step["attempts"][0]["status"] == "error"
            assert "interrupted" in step["attempts"][0]["error"]
        else:
            assert seen[item] == 1, f"item {item} was sent {seen[item]} times"
            assert step["retry_count"] == 0, step
    for item in FAST:
        assert steps[f"each_iter_{item}_work"]["id"] == before[f"each_iter_{item}_work"]["id"]
        assert (
            steps[f"each_iter_{item}_work"]["completed_at"]
            == (before[f"each_iter_{item}_work"]["completed_at"])
        )
    assert steps["each"]["status"] == "completed"
    assert steps["each"]["retry_count"] == 1, "the loop's own step was interrupted too"


def test_a_review_survives_kill_9_and_is_decided_after_the_restart(tmp_path: Path) -> None:
    """Reviews inside a concurrent loop: the server dies while the run waits for them."""
    home = tmp_path / "home"
    env = {"STEPLINE_LEASE_S": LEASE_S}
    with loopback_server({"/fetch": lambda n, body: (200, {}, {"item": body["item"]})}) as counter:
        definition = {
            "name": "review-crash",
            "nodes": [
                {
                    "id": "each",
                    "type": "for_each",
                    "config": {"items": ["a", "b"], "concurrency": 2},
                    "body": {
                        "nodes": [
                            {
                                "id": "get",
                                "type": "api_call",
                                "config": {
                                    "method": "POST",
                                    "url": f"{counter.url}/fetch",
                                    "json": {"item": "{{ loop.item }}"},
                                },
                            },
                            {
                                "id": "ok",
                                "type": "hil",
                                "config": {"payload": "{{ nodes.get.output.body.item }}"},
                            },
                        ],
                        "edges": [{"from": "get", "to": "ok"}],
                        "output": "{{ nodes.ok.output }}",
                    },
                },
            ],
        }
        first = start_server(home, env=env)
        second: ServeProcess | None = None
        try:
            headers = {"Authorization": f"Bearer {first.admin_key}"}
            with httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as http:
                workflow_id = http.post("/v1/workflows", json=definition).json()["id"]
                run_id = http.post(f"/v1/workflows/{workflow_id}/runs", json={}).json()["id"]
                run_url = f"/v1/workflows/{workflow_id}/runs/{run_id}"
                wait_until(
                    "the run waits for its reviews",
                    lambda: http.get(run_url).json()["status"] == "waiting_for_human",
                )
            first.kill()
            second = start_server(home, env=env)
            with httpx.Client(base_url=second.base_url, headers=headers, timeout=30) as http:
                listed = http.get("/v1/reviews").json()["data"]
                assert sorted(r["step_id"] for r in listed) == ["each_iter_0_ok", "each_iter_1_ok"]
                for step_id, output in (("each_iter_0_ok", "A"), ("each_iter_1_ok", None)):
                    body: dict[str, Any] = {"approved": True}
                    if output is not None:
                        body["output"] = output
                    decided = http.post(f"{run_url}/steps/{step_id}/review", json=body)
                    assert decided.status_code == 200, decided.text

                def ended() -> Any:
                    run = http.get(run_url).json()
                    return run if run["status"] in {"completed", "failed", "cancelled"} else None

                run = wait_until("the run ended", ended)
                steps = steps_by_id(http, workflow_id, run_id)
        finally:
            if first.process.poll() is None:
                first.kill()
            if second is not None:
                second.stop()

    assert run["status"] == "completed", run
    assert steps["each"]["outputs"] == ["A", "b"]
    assert counter.hit_count("/fetch") == 2, "a completed step ran again after the restart"
    assert steps["each_iter_0_get"]["retry_count"] == 0
