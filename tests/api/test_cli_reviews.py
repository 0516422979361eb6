"""`stepline reviews ...`, `stepline runs retry` and `stepline runs replay` over HTTP.

Real subprocesses against a real `stepline serve`; the server and key come from
STEPLINE_SERVER and STEPLINE_API_KEY, as for a user on another machine.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from control_support import (
    client,
    create_workflow,
    edge,
    finished,
    hil_workflow,
    node,
    settled,
    start,
    steps_of,
)

from support.cli import Remote
from support.server import ServeProcess

GATED = """
import os

def main(inputs):
    if not os.path.exists(inputs["gate"]):
        raise ValueError("the gate is closed")
    return {"scaled": inputs["n"] * inputs["factor"]}
"""


@pytest.fixture
def remote(tmp_path: Path, api_server: ServeProcess, org_key: str) -> Remote:
    return Remote(tmp_path, api_server.base_url, org_key)


@pytest.fixture
def http(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    with client(api_server, org_key) as made:
        yield made


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory every user may write to: sandbox children may run as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="stepline-cli-reviews-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api_server(process_isolation_server: ServeProcess) -> ServeProcess:
    """The code steps here read a gate file on the host: see `process_isolation_server`."""
    return process_isolation_server


def clean_failure(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with one clear message on stderr (no traceback) that says each fragment."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error:"), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_reviews_list_approve_with_an_edit_and_decide_again(
    remote: Remote, http: httpx.Client
) -> None:
    workflow_id = create_workflow(http, hil_workflow("cli-review"))
    run = start(http, workflow_id, {"name": "Ada"})
    assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"

    listed = remote.json("reviews", "list")
    assert [(r["run_id"], r["step_id"]) for r in listed] == [(run["id"], "check")]
    assert remote.json("reviews", "list", "--workflow", "cli-review") == listed
    table = remote("reviews", "list")
    assert table.returncode == 0, table.stderr
    assert run["id"] in table.stdout and "check" in table.stdout
    assert "Is the greeting right?" in table.stdout

    done = remote(
        "reviews",
        "approve",
        run["id"],
        "check",
        "--output-json",
        '{"text": "Hello, Ada!"}',
        "--comment",
        "warmer",
    )
    assert done.returncode == 0, done.stderr
    assert f"approved step check of run {run['id']}" in done.stdout
    assert finished(http, workflow_id, run["id"])["status"] == "completed"
    steps = steps_of(http, workflow_id, run["id"])
    assert steps["publish"]["outputs"] == {"published": {"text": "Hello, Ada!"}}
    assert steps["check"]["step_metadata"]["review"]["comment"] == "warmer"

    again = remote(
        "reviews", "approve", run["id"], "check", "--output-json", '{"text": "Hello, Ada!"}'
    )
    assert again.returncode == 0, again.stderr
    assert "was already approved" in again.stdout

    clean_failure(
        remote("reviews", "reject", run["id"], "check", "--comment", "changed my mind"),
        "conflict (409)",
        "already approved",
    )
    empty = remote("reviews", "list")
    assert empty.returncode == 0 and "No step is waiting" in empty.stderr


def test_reject_finds_the_single_pending_review_of_a_run(
    remote: Remote, http: httpx.Client
) -> None:
    workflow_id = create_workflow(http, hil_workflow("cli-reject"))
    run = start(http, workflow_id, {"name": "Bo"})
    assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
    decided = remote.json("reviews", "reject", run["id"], "--comment", "wrong tone")
    assert decided["changed"] is True
    assert decided["step"]["step_id"] == "check"
    assert decided["step"]["human_review_approved"] is False
    assert finished(http, workflow_id, run["id"])["status"] == "completed"
    steps = steps_of(http, workflow_id, run["id"])
    assert steps["redo"]["outputs"] == "redo Bo"
    assert steps["publish"]["status"] == "skipped"
    clean_failure(remote("reviews", "approve", run["id"]), "has no step waiting for a review")


def test_review_commands_fail_clearly(remote: Remote, http: httpx.Client) -> None:
    workflow_id = create_workflow(http, hil_workflow("cli-review-errors"))
    run = start(http, workflow_id, {"name": "Cy"})
    assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
    clean_failure(
        remote("reviews", "approve", run["id"], "check", "--output-json", "{nope"),
        "--output-json is not valid JSON",
    )
    clean_failure(remote("reviews", "approve", run["id"], "ghost"), "not found", "ghost")
    clean_failure(remote("reviews", "approve", str(uuid.uuid4())), "no run with id")
    clean_failure(remote("reviews", "approve", "not-a-uuid"), "is not a UUID")
    clean_failure(remote("reviews", "list", "--workflow", "no-such-workflow"), "no workflow named")
    clean_failure(remote("reviews", "approve", run["id"], "draft"), "conflict (409)", "not waiting")
    # Nothing above decided anything; now decide, so no run is left waiting.
    assert remote("reviews", "approve", run["id"]).returncode == 0
    assert finished(http, workflow_id, run["id"])["status"] == "completed"


def gated_workflow(name: str, gate: Path) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {
            "type": "object",
            "properties": {"factor": {"type": "integer"}},
            "required": ["factor"],
        },
        "nodes": [
            node("seed", "reshape", {"output": 7}),
            node(
                "gated",
                "code",
                {
                    "inputs": {
                        "gate": str(gate),
                        "n": "{{ nodes.seed.output }}",
                        "factor": "{{ inputs.factor }}",
                    },
                    "code": GATED,
                },
            ),
        ],
        "edges": [edge("seed", "gated")],
    }


def test_runs_retry_and_replay(remote: Remote, http: httpx.Client, drop_dir: Path) -> None:
    gate = drop_dir / "gate"
    workflow_id = create_workflow(http, gated_workflow("cli-gated", gate))
    run = start(http, workflow_id, {"factor": 2})
    assert finished(http, workflow_id, run["id"])["status"] == "failed"
    seed_before = steps_of(http, workflow_id, run["id"])["seed"]

    still_broken = remote("runs", "retry", run["id"], "--watch")
    assert still_broken.returncode == 1, still_broken.stderr
    assert "the gate is closed" in still_broken.stdout

    gate.write_text("open")
    retried = remote.json("runs", "retry", run["id"], "--watch", "--workflow", "cli-gated")
    assert retried["status"] == "completed"
    steps = {s["step_id"]: s for s in retried["steps"]}
    assert steps["gated"]["outputs"] == {"scaled": 14}
    assert steps["seed"]["completed_at"] == seed_before["completed_at"], "seed ran again"
    clean_failure(remote("runs", "retry", run["id"]), "conflict (409)", "completed")

    started = remote("runs", "replay", run["id"], "--from-node", "gated", "-i", "factor=3")
    assert started.returncode == 0, started.stderr
    replay_id = started.stdout.strip().splitlines()[-1]
    replayed = finished(http, workflow_id, replay_id)
    assert replayed["replay_of"] == run["id"] and replayed["inputs"] == {"factor": 3}
    assert replayed["status"] == "completed"
    steps = steps_of(http, workflow_id, replay_id)
    assert steps["gated"]["outputs"] == {"scaled": 21}
    assert steps["seed"]["step_metadata"]["replayed_from"]["run_id"] == run["id"]

    watched = remote.json(
        "runs",
        "replay",
        run["id"],
        "--from-node",
        "gated",
        "--inputs-json",
        '{"factor": 5}',
        "--watch",
    )
    assert watched["status"] == "completed" and watched["replay_of"] == run["id"]
    assert {s["step_id"]: s for s in watched["steps"]}["gated"]["outputs"] == {"scaled": 35}

    clean_failure(
        remote("runs", "replay", run["id"], "--from-node", "nowhere"), "422", "body.from_node"
    )
    clean_failure(
        remote("runs", "replay", run["id"], "--from-node", "gated", "--inputs-json", "[1]"),
        "--inputs-json must be a JSON object",
    )
    missing = remote("runs", "replay", run["id"])
    assert missing.returncode == 2 and "--from-node" in missing.stderr


def test_runs_start_watch_stops_at_a_review_with_exit_3_and_wait_settles(
    remote: Remote, http: httpx.Client
) -> None:
    workflow_id = create_workflow(http, hil_workflow("cli-watch-review"))
    done = remote("runs", "start", "cli-watch-review", "-i", "name=Ada", "--watch")
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "waiting_for_human" in done.stdout
    assert "stepline reviews approve" in done.stderr

    # ?wait=true answers as soon as the run waits for a person, with its steps.
    response = http.post(
        f"/v1/workflows/{workflow_id}/runs",
        params={"wait": "true", "timeout_s": 30},
        json={"inputs": {"name": "Bo"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "waiting_for_human"
    assert {s["step_id"]: s["status"] for s in body["steps"]}["check"] == "waiting_for_human"

    approved = remote("reviews", "approve", body["id"], "check")
    assert approved.returncode == 0, approved.stderr
    assert finished(http, workflow_id, body["id"])["status"] == "completed"
