"""The `stepline` command over HTTP: real subprocesses against a real `stepline serve`.

Each test has a home of its own (no saved credentials) and names the server and key
through STEPLINE_SERVER and STEPLINE_API_KEY, as a user on another machine would.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from support.cli import Remote, stepline
from support.server import ServeProcess, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def remote(tmp_path: Path, api_server: ServeProcess, org_key: str) -> Remote:
    return Remote(tmp_path, api_server.base_url, org_key)


def workflow_file(folder: Path, name: str, source: str = "order-triage.yaml") -> Path:
    definition = yaml.safe_load((EXAMPLES / source).read_text())
    definition["name"] = name
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def test_push_creates_then_updates_by_name(remote: Remote, tmp_path: Path) -> None:
    path = workflow_file(tmp_path, "pushed")
    done = remote("workflows", "push", str(path))
    assert done.returncode == 0, done.stderr
    assert "created workflow pushed" in done.stdout and "version 1" in done.stdout

    again = remote.json("workflows", "push", str(path))
    assert again["action"] == "unchanged" and again["latest_version"] == 1

    changed = yaml.safe_load(path.read_text())
    changed["description"] = "now with a second version"
    path.write_text(yaml.safe_dump(changed))
    updated = remote.json("workflows", "push", str(path))
    assert updated["action"] == "updated" and updated["latest_version"] == 2
    assert updated["id"] == again["id"]
    assert f"id {updated['id']}, version 2" in remote("workflows", "push", str(path)).stdout

    listed = remote.json("workflows", "list")
    assert [w["name"] for w in listed] == ["pushed"]
    shown = remote.json("workflows", "show", "pushed")
    assert shown["id"] == updated["id"]
    assert shown["definition"]["description"] == "now with a second version"
    table = remote("workflows", "show", updated["id"])
    assert table.returncode == 0 and "v2" in table.stdout and "v1" in table.stdout


def test_validate_on_the_server_lists_the_problems(remote: Remote, tmp_path: Path) -> None:
    path = workflow_file(tmp_path, "checked")
    done = remote("workflows", "validate", str(path))
    assert done.returncode == 0 and "valid" in done.stdout
    broken = yaml.safe_load(path.read_text())
    broken["nodes"].append({"id": "ghost", "type": "teleport"})
    path.write_text(yaml.safe_dump(broken))
    done = remote("workflows", "validate", str(path))
    assert done.returncode == 1
    assert "ghost" in done.stdout and "teleport" in done.stdout
    assert remote.json("workflows", "list") == []  # validating saves nothing


def test_push_of_an_invalid_workflow_names_the_problem(remote: Remote, tmp_path: Path) -> None:
    path = workflow_file(tmp_path, "broken")
    broken = yaml.safe_load(path.read_text())
    broken["edges"].append({"from": "report", "to": "nowhere"})
    path.write_text(yaml.safe_dump(broken))
    done = remote("workflows", "push", str(path))
    assert done.returncode == 2
    assert "422" in done.stderr and "nowhere" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_refused_key_is_a_clear_error(remote: Remote) -> None:
    done = remote("workflows", "list", STEPLINE_API_KEY="stp_wrong")
    assert done.returncode == 2
    assert "the API key was refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_key_at_all_says_how_to_get_one(remote: Remote) -> None:
    done = remote("workflows", "list", STEPLINE_API_KEY="")
    assert done.returncode == 2
    assert "no API key" in done.stderr and "STEPLINE_API_KEY" in done.stderr


def test_an_unreachable_server_is_a_clear_error(remote: Remote) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = remote("workflows", "list", "--server", nowhere)
    assert done.returncode == 1  # Unavailable: an outage, not a refused request
    assert f"cannot reach the stepline server at {nowhere}" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_names_and_ids_are_clear_errors(remote: Remote) -> None:
    done = remote("workflows", "show", "no-such-workflow")
    assert done.returncode == 2 and "no workflow named 'no-such-workflow'" in done.stderr
    missing = str(uuid.uuid4())
    done = remote("workflows", "show", missing)
    assert done.returncode == 2 and f"workflow {missing} not found" in done.stderr
    done = remote("runs", "show", missing)
    assert done.returncode == 2 and f"no run with id {missing}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_saved_credentials_need_no_environment(
    api_server: ServeProcess, tmp_path: Path
) -> None:
    """With the home `stepline serve` wrote, `workflows list` finds server and key alone."""
    done = stepline("workflows", "list", "--json", home=api_server.home)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
    # A home without credentials and no server named: say how to name one.
    done = stepline("workflows", "list", home=tmp_path)
    assert done.returncode == 2 and "STEPLINE_SERVER" in done.stderr


def test_runs_start_watch_follows_the_run_to_the_end(remote: Remote, tmp_path: Path) -> None:
    assert remote("workflows", "push", str(workflow_file(tmp_path, "watched"))).returncode == 0
    done = remote("runs", "start", "watched", "-i", "amount=700", "-i", "customer=Ada", "--watch")
    assert done.returncode == 0, done.stderr
    assert "approve" in done.stdout and "skipped" in done.stdout
    assert '"message": "Review Ada: risk 0.7"' in done.stdout
    assert "Traceback" not in done.stderr


def test_a_failed_run_exits_1(remote: Remote, tmp_path: Path) -> None:
    definition = json.loads((EXAMPLES / "failing-step.json").read_text())
    definition["name"] = "fails"
    path = tmp_path / "fails.json"
    path.write_text(json.dumps(definition))
    assert remote("workflows", "push", str(path)).returncode == 0
    rows = '{"rows": [{"qty": 1}, {"qty": "two"}]}'
    done = remote("runs", "start", "fails", "--inputs-json", rows, "--watch")
    assert done.returncode == 1
    assert "failed" in done.stdout and "invalid literal for int()" in done.stdout


def test_runs_and_steps_read_back_over_http(remote: Remote, tmp_path: Path) -> None:
    pushed = remote.json("workflows", "push", str(workflow_file(tmp_path, "readback")))
    started = remote.json("runs", "start", pushed["id"], "-i", "amount=100", "-i", "customer=Bo")
    assert started["status"] in {"queued", "running", "completed"}
    watched = remote.json(
        "runs", "start", "readback", "-i", "amount=900", "-i", "customer=Cy", "--watch"
    )
    assert watched["status"] == "completed"
    assert [s["step_id"] for s in watched["steps"]] == [
        "score",
        "route",
        "flag",
        "approve",
        "report",
    ]

    listed = remote.json("runs", "list")
    assert {r["id"] for r in listed} == {started["id"], watched["id"]}
    assert listed[0]["id"] == watched["id"]  # newest first
    assert [r["id"] for r in remote.json("runs", "list", "--workflow", "readback")] == [
        watched["id"],
        started["id"],
    ]

    shown = remote.json("runs", "show", watched["id"])
    assert shown["output"] == {"message": "Review Cy: risk 0.9"}
    assert remote.json("runs", "show", watched["id"][:8])["id"] == watched["id"]  # a prefix
    assert shown["step_counts"] == {"completed": 4, "skipped": 1}
    steps = remote.json("steps", watched["id"], "--workflow", "readback")
    assert [s["step_id"] for s in steps] == [s["step_id"] for s in watched["steps"]]
    assert steps[0]["inputs"]["inputs"] == {"amount": 900}

    table = remote("runs", "show", watched["id"])
    assert table.returncode == 0 and "completed" in table.stdout and "approve" in table.stdout


def test_runs_start_with_bad_inputs_names_the_fields(remote: Remote, tmp_path: Path) -> None:
    assert remote("workflows", "push", str(workflow_file(tmp_path, "strict"))).returncode == 0
    done = remote("runs", "start", "strict", "-i", "amount=lots")
    assert done.returncode == 2
    assert "body.inputs.amount" in done.stderr and "body.inputs.customer" in done.stderr
    assert "Traceback" not in done.stderr
