"""What the Onepin dialect's API tests share: a client under /onepin, workflows, waiting."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx

from support.server import ServeProcess

EXAMPLES = Path(__file__).resolve().parent / "examples"
BASE = "/onepin/api/v1/workflows"
FINISHED = {"completed", "failed", "cancelled"}


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"onepin_{name}.json").read_text())


def client(server: ServeProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def create(http: httpx.Client, name: str, definition: dict[str, Any]) -> str:
    """A workflow made through the dialect; its id."""
    answer = http.post(BASE, json={"name": name, "definition": definition})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


def start(http: httpx.Client, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
    answer = http.post(f"{BASE}/{workflow_id}/runs", json={"inputs": inputs or {}})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["data"]["id"])


def wait_until(
    http: httpx.Client, workflow_id: str, run_id: str, statuses: set[str], timeout_s: float = 60
) -> dict[str, Any]:
    """The run (Onepin's light view) once its status is one of `statuses`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = http.get(f"{BASE}/{workflow_id}/runs/{run_id}/status")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()["data"]
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}"
        time.sleep(0.1)


def finished(http: httpx.Client, workflow_id: str, run_id: str) -> dict[str, Any]:
    return wait_until(http, workflow_id, run_id, FINISHED)


def reshape(node_id: str, output: Any, **options: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "reshape", "config": {"output": output}, **options}


def chain(*nodes: dict[str, Any]) -> list[dict[str, str]]:
    return [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
