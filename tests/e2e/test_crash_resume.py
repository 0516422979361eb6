"""kill -9 in the middle of a run: the next worker resumes it from its checkpoints."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from support.cli import STEPLINE, cli_env, stepline, stepline_json
from support.http_server import loopback_server

pytestmark = pytest.mark.slow


def test_kill_9_mid_step_resumes_without_rerunning_completed_steps(tmp_path: Path) -> None:
    stuck = threading.Event()

    def slow(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
        if n == 1:  # the first call hangs until the test ends: its caller gets killed
            stuck.wait(60)
        return 200, {}, {"slow": n}

    def ok(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"n": n}

    with loopback_server({"/first": ok, "/slow": slow, "/last": ok}) as server:
        workflow = tmp_path / "crash.json"
        workflow.write_text(
            json.dumps(
                {
                    "name": "crash-resume",
                    "nodes": [
                        {
                            "id": "first",
                            "type": "api_call",
                            "config": {"url": f"{server.url}/first"},
                        },
                        {"id": "slow", "type": "api_call", "config": {"url": f"{server.url}/slow"}},
                        {"id": "last", "type": "api_call", "config": {"url": f"{server.url}/last"}},
                    ],
                    "edges": [{"from": "first", "to": "slow"}, {"from": "slow", "to": "last"}],
                }
            )
        )
        env = cli_env(tmp_path, STEPLINE_LEASE_S="1")
        proc = subprocess.Popen(
            [STEPLINE, "run", str(workflow), "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while server.hit_count("/slow") == 0:
                assert proc.poll() is None, "the run ended before it reached the slow step"
                assert time.monotonic() < deadline, "the run never reached the slow step"
                time.sleep(0.05)
            proc.kill()  # SIGKILL: no cleanup, the lease is simply left to expire
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()

        (run,) = stepline_json("runs", "list", home=tmp_path)
        assert run["status"] == "running"
        time.sleep(1.5)  # let the dead worker's lease (1 s) expire

        drained = stepline("worker", "--once", home=tmp_path, STEPLINE_LEASE_S="1")
        assert drained.returncode == 0, drained.stderr
        assert f"run {run['id']}: completed" in drained.stderr

        resumed = stepline_json("runs", "show", run["id"], home=tmp_path)
        stuck.set()

    assert resumed["status"] == "completed"
    assert resumed["attempt"] == 2
    steps = {s["step_id"]: s for s in resumed["steps"]}
    assert server.hit_count("/first") == 1, "a completed step ran again"
    assert server.hit_count("/slow") == 2
    assert server.hit_count("/last") == 1
    assert steps["first"]["retry_count"] == 0
    assert steps["slow"]["retry_count"] == 1
    assert steps["slow"]["status"] == "completed"
    assert steps["slow"]["outputs"]["body"] == {"slow": 2}
    first_try, second_try = steps["slow"]["attempts"]
    assert first_try["status"] == "error" and "interrupted" in first_try["error"]
    assert second_try["status"] == "completed"
