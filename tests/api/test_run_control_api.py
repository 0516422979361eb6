"""Retry, replay and cancel over HTTP against a real `stepline serve`.

Side effects are counted by a loopback HTTP server that the workflows' `api_call` steps
hit: a step that runs again is a hit more, so "completed steps are not run again" is
proved by the counter, not by the records alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_support import (
    client,
    create_workflow,
    edge,
    error_of,
    finished,
    node,
    run_url,
    start,
    steps_of,
    wait_for,
)

from support.http_server import LoopbackServer, loopback_server
from support.server import ServeProcess

GATED = """
import os

def main(inputs):
    if not os.path.exists(inputs["gate"]):
        raise ValueError("the gate is closed")
    return {"n": inputs["n"] * 10}
"""

HELD = """
import os, time

def main(inputs):
    if os.path.exists(inputs["hold"]):
        with open(inputs["pid_file"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(30)
    return {"n": inputs["n"] + 1}
"""


def counting(n: int, body: Any) -> tuple[int, dict[str, str], Any]:
    return 200, {}, {"n": n, "got": body}


@pytest.fixture
def counter() -> Iterator[LoopbackServer]:
    with loopback_server({"/fetch": counting, "/notify": counting}) as server:
        yield server


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory every user may write to: sandbox children may run as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="stepline-control-api-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api_server(process_isolation_server: ServeProcess) -> ServeProcess:
    """The code steps here read a gate file on the host: see `process_isolation_server`."""
    return process_isolation_server


def fetch_node(counter: LoopbackServer) -> dict[str, Any]:
    return node("fetch", "api_call", {"url": f"{counter.url}/fetch"})


def notify_node(counter: LoopbackServer, value: str) -> dict[str, Any]:
    return node(
        "notify", "api_call", {"method": "POST", "url": f"{counter.url}/notify", "json": value}
    )


def gated_workflow(counter: LoopbackServer, gate: Path) -> dict[str, Any]:
    """fetch (counted) -> gated (fails until `gate` exists) -> notify (counted)."""
    return {
        "name": f"gated-{uuid.uuid4().hex[:8]}",
        "nodes": [
            fetch_node(counter),
            node(
                "gated",
                "code",
                {
                    "inputs": {"gate": str(gate), "n": "{{ nodes.fetch.output.body.n }}"},
                    "code": GATED,
                },
            ),
            notify_node(counter, "{{ nodes.gated.output }}"),
        ],
        "edges": [edge("fetch", "gated"), edge("gated", "notify")],
    }


# --- retry ----------------------------------------------------------------------------------


def test_retry_continues_a_failed_run_without_rerunning_completed_steps(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer, drop_dir: Path
) -> None:
    gate = drop_dir / "gate"
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, gated_workflow(counter, gate))
        run = start(http, workflow_id)
        failed = finished(http, workflow_id, run["id"])
        assert failed["status"] == "failed", failed
        before = steps_of(http, workflow_id, run["id"])
        assert before["fetch"]["status"] == "completed"
        assert before["gated"]["status"] == "error"
        assert "the gate is closed" in before["gated"]["error"]
        assert counter.hit_count("/fetch") == 1
        assert counter.hit_count("/notify") == 0

        gate.write_text("open")  # the fix, made between the attempts
        retried = http.post(f"{run_url(workflow_id, run['id'])}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["id"] == run["id"], "a retry is the same run"
        assert retried.json()["status"] in {"queued", "running", "completed"}

        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        assert done["error"] is None
        after = steps_of(http, workflow_id, run["id"])
        assert counter.hit_count("/fetch") == 1, "the completed step ran again"
        assert counter.hit_count("/notify") == 1
        assert after["fetch"]["id"] == before["fetch"]["id"]
        assert after["fetch"]["outputs"] == before["fetch"]["outputs"]
        assert after["fetch"]["completed_at"] == before["fetch"]["completed_at"]
        assert after["gated"]["id"] == before["gated"]["id"], "the step stays one record"
        assert after["gated"]["status"] == "completed"
        assert after["gated"]["outputs"] == {"n": 10}
        statuses = [a["status"] for a in after["gated"]["attempts"]]
        assert statuses[0] == "error" and statuses[-1] == "completed"
        assert after["notify"]["outputs"]["body"]["got"] == {"n": 10}

        again = http.post(f"{run_url(workflow_id, run['id'])}/retry")
        assert again.status_code == 409, again.text
        assert error_of(again)["code"] == "conflict"
        assert "only a failed or cancelled run" in error_of(again)["message"]


def test_retry_of_an_unknown_run_is_404_and_needs_the_run_scope(
    api_server: ServeProcess, org_key: str, make_key: Any, counter: LoopbackServer, drop_dir: Path
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, gated_workflow(counter, drop_dir / "never"))
        run = start(http, workflow_id)
        assert finished(http, workflow_id, run["id"])["status"] == "failed"
        missing = http.post(f"{run_url(workflow_id, str(uuid.uuid4()))}/retry")
        assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    reader = make_key("control-api-reader", ("read",))
    with client(api_server, reader) as other:
        refused = other.post(f"{run_url(workflow_id, run['id'])}/retry")
        assert refused.status_code == 403
    stranger = make_key("control-api-stranger", ("run",))
    with client(api_server, stranger) as other:
        assert other.post(f"{run_url(workflow_id, run['id'])}/retry").status_code == 404
        replay = other.post(f"{run_url(workflow_id, run['id'])}/replay", json={"from_node": "x"})
        assert replay.status_code == 404


# --- cancel, then retry ------------------------------------------------------------------------


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def test_cancel_during_a_running_code_step_then_retry_the_cancelled_run(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer, drop_dir: Path
) -> None:
    hold, pid_file = drop_dir / "hold", drop_dir / "pid"
    hold.write_text("hold")
    definition = {
        "name": "held",
        "nodes": [
            fetch_node(counter),
            node(
                "held",
                "code",
                {
                    "inputs": {
                        "hold": str(hold),
                        "pid_file": str(pid_file),
                        "n": "{{ nodes.fetch.output.body.n }}",
                    },
                    "code": HELD,
                },
                timeout_s=120,
            ),
            notify_node(counter, "{{ nodes.held.output }}"),
        ],
        "edges": [edge("fetch", "held"), edge("held", "notify")],
    }
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, definition)
        run = start(http, workflow_id)
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the held step never started"
            time.sleep(0.02)
        pid = int(pid_file.read_text())
        assert steps_of(http, workflow_id, run["id"])["held"]["status"] == "running"

        cancelled = http.post(f"{run_url(workflow_id, run['id'])}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        # A 30 s sleep: the run ends long before it would, so the step was stopped.
        stopped = wait_for(
            http, workflow_id, run["id"], lambda r: r["status"] == "cancelled", timeout_s=20
        )
        steps = steps_of(http, workflow_id, run["id"])
        assert steps["fetch"]["status"] == "completed"
        assert steps["held"]["status"] == "cancelled"
        assert steps["notify"]["status"] == "cancelled"
        deadline = time.monotonic() + 20
        while not gone(pid):
            assert time.monotonic() < deadline, f"the code step's process {pid} outlived the cancel"
            time.sleep(0.02)
        assert stopped["completed_at"] is not None

        hold.unlink()
        retried = http.post(f"{run_url(workflow_id, run['id'])}/retry")
        assert retried.status_code == 202, retried.text
        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, run["id"])
        assert counter.hit_count("/fetch") == 1, "the completed step ran again"
        assert counter.hit_count("/notify") == 1
        assert steps["held"]["outputs"] == {"n": 2}
        assert [a["status"] for a in steps["held"]["attempts"]][-1] == "completed"


# --- replay -----------------------------------------------------------------------------------


def replay_workflow(counter: LoopbackServer) -> dict[str, Any]:
    """fetch (counted) -> scale (by inputs.factor) -> notify (counted)."""
    return {
        "name": f"replayed-{uuid.uuid4().hex[:8]}",
        "inputs": {
            "type": "object",
            "properties": {"factor": {"type": "integer"}},
            "required": ["factor"],
        },
        "nodes": [
            fetch_node(counter),
            node(
                "scale",
                "reshape",
                {"output": {"value": "{{ nodes.fetch.output.body.n * inputs.factor }}"}},
            ),
            notify_node(counter, "{{ nodes.scale.output }}"),
        ],
        "edges": [edge("fetch", "scale"), edge("scale", "notify")],
    }


def test_replay_from_a_node_reuses_upstream_outputs_and_runs_the_rest(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, replay_workflow(counter))
        original = start(http, workflow_id, {"factor": 2})
        assert finished(http, workflow_id, original["id"])["status"] == "completed"
        first = steps_of(http, workflow_id, original["id"])
        assert first["scale"]["outputs"] == {"value": 2}
        assert (counter.hit_count("/fetch"), counter.hit_count("/notify")) == (1, 1)

        response = http.post(
            f"{run_url(workflow_id, original['id'])}/replay",
            json={"from_node": "scale", "inputs": {"factor": 5}},
        )
        assert response.status_code == 201, response.text
        replay = response.json()
        assert replay["id"] != original["id"]
        assert replay["replay_of"] == original["id"]
        assert replay["trigger"] == "replay"
        assert replay["inputs"] == {"factor": 5}
        assert replay["workflow_version"] == original["workflow_version"]
        assert response.headers["Location"] == run_url(workflow_id, replay["id"])

        done = finished(http, workflow_id, replay["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, replay["id"])
        assert counter.hit_count("/fetch") == 1, "an upstream step ran again"
        assert counter.hit_count("/notify") == 2, "the steps from from_node on ran"
        assert steps["fetch"]["id"] != first["fetch"]["id"], "copied into a record of its own"
        assert steps["fetch"]["run_id"] == replay["id"]
        assert steps["fetch"]["outputs"] == first["fetch"]["outputs"]
        assert steps["fetch"]["step_metadata"]["replayed_from"] == {
            "run_id": original["id"],
            "id": first["fetch"]["id"],
        }
        for executed in ("scale", "notify"):
            assert "replayed_from" not in (steps[executed]["step_metadata"] or {}), executed
        assert steps["scale"]["outputs"] == {"value": 5}
        assert steps["notify"]["outputs"]["body"]["got"] == {"value": 5}

        # The original is untouched.
        assert steps_of(http, workflow_id, original["id"]) == first

        # Without inputs the original's are used; from the root nothing is reused.
        again = http.post(
            f"{run_url(workflow_id, original['id'])}/replay", json={"from_node": "fetch"}
        )
        assert again.status_code == 201, again.text
        assert again.json()["inputs"] == {"factor": 2}
        assert finished(http, workflow_id, again.json()["id"])["status"] == "completed"
        assert counter.hit_count("/fetch") == 2


def test_replay_can_run_another_version(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer
) -> None:
    with client(api_server, org_key) as http:
        definition = replay_workflow(counter)
        workflow_id = create_workflow(http, definition)
        original = start(http, workflow_id, {"factor": 3})
        assert finished(http, workflow_id, original["id"])["status"] == "completed"
        fixed = replay_workflow(counter)
        fixed["name"] = definition["name"]
        fixed["nodes"][1]["config"]["output"] = {
            "value": "{{ nodes.fetch.output.body.n * inputs.factor + 100 }}"
        }
        updated = http.put(f"/v1/workflows/{workflow_id}", json=fixed)
        assert updated.status_code == 200, updated.text
        assert updated.json()["latest_version"] == 2

        response = http.post(
            f"{run_url(workflow_id, original['id'])}/replay",
            json={"from_node": "scale", "workflow_version": 2},
        )
        assert response.status_code == 201, response.text
        replay = response.json()
        assert replay["workflow_version"] == 2
        assert finished(http, workflow_id, replay["id"])["status"] == "completed"
        steps = steps_of(http, workflow_id, replay["id"])
        assert steps["scale"]["outputs"] == {"value": 103}
        assert steps["fetch"]["step_metadata"]["replayed_from"]["run_id"] == original["id"]
        assert counter.hit_count("/fetch") == 1


def test_replay_requests_that_cannot_be_honoured(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, replay_workflow(counter))
        original = start(http, workflow_id, {"factor": 2})
        assert finished(http, workflow_id, original["id"])["status"] == "completed"
        url = f"{run_url(workflow_id, original['id'])}/replay"

        def refused(body: Any) -> dict[str, Any]:
            response = http.post(url, json=body)
            assert response.status_code == 422, (body, response.text)
            return error_of(response)

        unknown = refused({"from_node": "nope"})
        assert [d["field"] for d in unknown["details"]] == ["body.from_node"]
        assert "'nope' is not a top-level node" in unknown["message"]
        bad_inputs = refused({"from_node": "scale", "inputs": {"factor": "two"}})
        assert "body.inputs.factor" in [d["field"] for d in bad_inputs["details"]]
        # Given inputs merge over the original's: a key set to null replaces its value.
        nulled = refused({"from_node": "scale", "inputs": {"factor": None}})
        assert "body.inputs.factor" in [d["field"] for d in nulled["details"]], nulled
        no_version = refused({"from_node": "scale", "workflow_version": 9})
        assert [d["field"] for d in no_version["details"]] == ["body.workflow_version"]
        assert "body.from_node" in [d["field"] for d in refused({})["details"]]
        assert "body.extra" in [
            d["field"] for d in refused({"from_node": "scale", "extra": 1})["details"]
        ]
        missing = http.post(
            f"{run_url(workflow_id, str(uuid.uuid4()))}/replay", json={"from_node": "scale"}
        )
        assert missing.status_code == 404
    assert counter.hit_count("/fetch") == 1, "no refused replay started anything"


# --- loops: retry and replay keep completed iterations ------------------------------------------

LOOP_GATED = """
import os

def main(inputs):
    if inputs["item"] == 2 and not os.path.exists(inputs["gate"]):
        raise ValueError("item 2 waits for the gate")
    return inputs["item"] * 10
"""


def loop_workflow(counter: LoopbackServer, gate: Path) -> dict[str, Any]:
    """each: for item in [1, 2, 3] -> fetch (counted, sends the item) -> check (item 2 fails
    until `gate` exists); then notify (counted)."""
    return {
        "name": f"loop-control-{uuid.uuid4().hex[:8]}",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": [1, 2, 3], "concurrency": 1},
                "body": {
                    "nodes": [
                        node(
                            "get",
                            "api_call",
                            {
                                "method": "POST",
                                "url": f"{counter.url}/fetch",
                                "json": {"item": "{{ loop.item }}"},
                            },
                        ),
                        node(
                            "check",
                            "code",
                            {
                                "inputs": {"item": "{{ loop.item }}", "gate": str(gate)},
                                "code": LOOP_GATED,
                            },
                        ),
                    ],
                    "edges": [edge("get", "check")],
                    "output": "{{ nodes.check.output }}",
                },
            },
            notify_node(counter, "{{ nodes.each.output }}"),
        ],
        "edges": [edge("each", "notify")],
    }


def test_retry_and_replay_of_a_loop_keep_its_completed_iterations(
    api_server: ServeProcess, org_key: str, counter: LoopbackServer, drop_dir: Path
) -> None:
    gate = drop_dir / "gate"
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, loop_workflow(counter, gate))
        run = start(http, workflow_id)
        failed = finished(http, workflow_id, run["id"])
        assert failed["status"] == "failed", failed
        before = steps_of(http, workflow_id, run["id"])
        assert before["each_iter_0_check"]["status"] == "completed"
        assert before["each_iter_1_check"]["status"] == "error"
        assert "each_iter_2_get" not in before or before["each_iter_2_get"]["status"] != "completed"
        assert counter.hit_count("/fetch") == 2  # items 1 and 2

        gate.write_text("open")
        assert http.post(f"{run_url(workflow_id, run['id'])}/retry").status_code == 202
        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        after = steps_of(http, workflow_id, run["id"])
        assert after["notify"]["outputs"]["body"]["got"] == [10, 20, 30]
        # Iteration 0 did not run again; iteration 1's `get` had completed, so only its
        # failed `check` ran again; iteration 2 ran for the first time.
        assert counter.hit_count("/fetch") == 3, "a completed step of the loop ran again"
        assert after["each_iter_0_get"]["completed_at"] == before["each_iter_0_get"]["completed_at"]
        assert after["each_iter_1_get"]["completed_at"] == before["each_iter_1_get"]["completed_at"]
        assert after["each_iter_1_check"]["status"] == "completed"
        assert after["each_iter_1_check"]["id"] == before["each_iter_1_check"]["id"]

        response = http.post(
            f"{run_url(workflow_id, run['id'])}/replay", json={"from_node": "notify"}
        )
        assert response.status_code == 201, response.text
        replay_id = response.json()["id"]
        assert finished(http, workflow_id, replay_id)["status"] == "completed"
        replayed = steps_of(http, workflow_id, replay_id)
        assert counter.hit_count("/fetch") == 3, "the replay ran the loop again"
        assert counter.hit_count("/notify") == 2
        for step_id in ("each", "each_iter_0_get", "each_iter_2_check"):
            origin = replayed[step_id]["step_metadata"]["replayed_from"]
            assert origin == {"run_id": run["id"], "id": after[step_id]["id"]}, step_id
        assert replayed["notify"]["outputs"]["body"]["got"] == [10, 20, 30]
