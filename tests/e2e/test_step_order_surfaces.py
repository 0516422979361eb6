"""One order of a run's steps on every surface, on SQLite and PostgreSQL: a real `stepline
serve` runs a workflow with a loop in a loop and top-level steps after it, and the steps
come in the order the workflow ran them from the API's steps list (its fast lane, the
route, pages both ways), the run's `?wait=true` answer, both downloads, a node's download,
the SSE replay (each step event carries the step's order_key), the SDK and the CLI's
`steps --json`, remote and local.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepline.sdk import Client
from support.cli import Remote, stepline
from support.server import ServeProcess, make_key, start_server
from support.step_order import EXPECTED_ORDER, NESTED_LOOPS


@pytest.fixture
def served(tmp_path: Path, store_url: str) -> Iterator[tuple[ServeProcess, str]]:
    server = start_server(tmp_path / "home", env={"STEPLINE_DATABASE_URL": store_url})
    try:
        yield server, make_key(store_url, "order")
    finally:
        server.stop()


def _ids(steps: list[dict[str, Any]]) -> list[str]:
    return [step["step_id"] for step in steps]


def test_every_surface_lists_the_steps_in_execution_order(
    served: tuple[ServeProcess, str], store_url: str, tmp_path: Path
) -> None:
    server, key = served
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        created = http.post("/v1/workflows", json=NESTED_LOOPS)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        started = http.post(f"/v1/workflows/{workflow_id}/runs", params={"wait": "true"})
        assert started.status_code == 200, started.text
        run = started.json()
        assert run["status"] == "completed", run
        if run.get("steps") is not None:
            assert _ids(run["steps"]) == EXPECTED_ORDER
        base = f"/v1/workflows/{workflow_id}/runs/{run['id']}"

        # The steps list: one page (the fast lane), and pages of 4 both ways.
        listed = http.get(f"{base}/steps", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        steps = listed.json()["data"]
        assert _ids(steps) == EXPECTED_ORDER
        order = {step["step_id"]: step["order_key"] for step in steps}
        assert list(order.values()) == sorted(order.values())
        pages: list[dict[str, Any]] = []
        page = http.get(f"{base}/steps", params={"limit": 4, "include_io": "false"}).json()
        pages.append(page)
        while page["next_cursor"] is not None:
            params = {"limit": 4, "include_io": "false", "after": page["next_cursor"]}
            page = http.get(f"{base}/steps", params=params).json()
            pages.append(page)
        assert [s for p in pages for s in _ids(p["data"])] == EXPECTED_ORDER
        backwards: list[str] = []
        while page["prev_cursor"] is not None:
            backwards = _ids(page["data"]) + backwards
            page = http.get(f"{base}/steps", params={"limit": 4, "before": page["prev_cursor"]})
            page = page.json()
        assert _ids(page["data"]) + backwards == EXPECTED_ORDER
        # A parameter the fast lane leaves to the route (a filter's bad value is the
        # route's to refuse; a good one it answers): the route's order is the same.
        leaves = http.get(f"{base}/steps", params={"node_id": "leaf"}).json()["data"]
        assert _ids(leaves) == [s for s in EXPECTED_ORDER if s.endswith("_leaf")]

        # Downloads.
        document = http.get(f"{base}/download").json()
        assert _ids(document["steps"]) == EXPECTED_ORDER
        lines = http.get(f"{base}/download", params={"format": "ndjson"}).text.splitlines()
        assert [json.loads(line)["step_id"] for line in lines] == EXPECTED_ORDER
        node = http.get(f"{base}/nodes/leaf/download").json()
        assert _ids(node) == [s for s in EXPECTED_ORDER if s.endswith("_leaf")]

        # The SSE replay: events in commit order, each step's carrying its order_key.
        stream = http.get(f"{base}/events").text
        events = [
            json.loads(line[len("data: ") :])
            for line in stream.splitlines()
            if line.startswith("data: ")
        ]
        step_events = [e for e in events if e["type"].startswith("step.")]
        assert step_events
        assert all(e["data"]["order_key"] == order[e["data"]["step_id"]] for e in step_events)
        final = {e["data"]["step_id"]: e["data"]["order_key"] for e in step_events}
        assert sorted(final, key=final.__getitem__) == EXPECTED_ORDER

    # The SDK (page after page).
    with Client(server.base_url, key) as sdk:
        listed_by_sdk = list(sdk.runs.steps.list(workflow_id, run["id"], page_size=3))
    assert [s.step_id for s in listed_by_sdk] == EXPECTED_ORDER
    assert [s.order_key for s in listed_by_sdk] == list(order.values())

    # The CLI: `steps --json` over HTTP, and on the database itself.
    remote = Remote(tmp_path / "cli", server.base_url, key)
    assert _ids(remote.json("steps", run["id"])) == EXPECTED_ORDER
    local = stepline(
        "steps",
        run["id"],
        "--json",
        home=tmp_path / "local",
        STEPLINE_DATABASE_URL=store_url,
    )
    assert local.returncode == 0, local.stderr
    assert _ids(json.loads(local.stdout)) == EXPECTED_ORDER
