"""Helpers of the review, retry and replay API tests: a client, workflows, waiting for runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from support.server import ServeProcess
from support.workflows import edge, hil_workflow, node

__all__ = ["edge", "hil_workflow", "node"]  # where the API tests have always found them

FINISHED = {"completed", "failed", "cancelled"}
SETTLED = FINISHED | {"waiting_for_human"}


def client(server: ServeProcess, key: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=60,
    )


def create_workflow(http: httpx.Client, definition: dict[str, Any]) -> str:
    response = http.post("/v1/workflows", json=definition)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


def runs_url(workflow_id: str) -> str:
    return f"/v1/workflows/{workflow_id}/runs"


def run_url(workflow_id: str, run_id: str) -> str:
    return f"{runs_url(workflow_id)}/{run_id}"


def review_url(workflow_id: str, run_id: str, step: str) -> str:
    return f"{run_url(workflow_id, run_id)}/steps/{step}/review"


def start(http: httpx.Client, workflow_id: str, inputs: dict[str, Any] | None = None) -> Any:
    response = http.post(runs_url(workflow_id), json={"inputs": inputs or {}})
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(
    http: httpx.Client,
    workflow_id: str,
    run_id: str,
    test: Callable[[Any], bool],
    timeout_s: float = 60,
) -> Any:
    """The run once `test` holds for it (polled; fails after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = http.get(run_url(workflow_id, run_id))
        assert response.status_code == 200, response.text
        run = response.json()
        if test(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
        time.sleep(0.05)


def settled(http: httpx.Client, workflow_id: str, run_id: str) -> Any:
    """The run once it finished or paused for a review."""
    return wait_for(http, workflow_id, run_id, lambda r: r["status"] in SETTLED)


def finished(http: httpx.Client, workflow_id: str, run_id: str) -> Any:
    return wait_for(http, workflow_id, run_id, lambda r: r["status"] in FINISHED)


def steps_of(http: httpx.Client, workflow_id: str, run_id: str) -> dict[str, Any]:
    """Every step of the run by step_id."""
    response = http.get(f"{run_url(workflow_id, run_id)}/steps", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {step["step_id"]: step for step in response.json()["data"]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    error: dict[str, Any] = body["error"]
    return error
