"""POST .../cancel of a parent run against a real `stepline serve` on PostgreSQL, while a
transaction of the test's own holds the child run's row: the parent is cancelled at once,
and the answer comes once the child is cancelled too, right after the lock is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from support.locks import run_row_locked
from support.server import ServeProcess, make_key, start_server

HELD_S = 0.5

CHILD = {
    "name": "reviewed-child",
    "nodes": [{"id": "ok", "type": "hil", "config": {"payload": 1, "instructions": "check"}}],
}
PARENT = {
    "name": "parent",
    "nodes": [{"id": "call", "type": "sub_workflow", "config": {"workflow": "reviewed-child"}}],
}


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[ServeProcess]:
    process = start_server(tmp_path / "home", env={"STEPLINE_DATABASE_URL": store_url})
    try:
        yield process
    finally:
        process.stop()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def run_status(api: httpx.AsyncClient, path: str) -> str:
    status: str = ok(await api.get(path))["status"]
    return status


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_cancel_answers_once_a_locked_child_run_is_cancelled_too(
    server: ServeProcess, store_url: str
) -> None:
    key = await asyncio.to_thread(make_key, store_url, "cancellers")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as api:
        child_wf = ok(await api.post("/v1/workflows", json=CHILD), 201)["id"]
        parent_wf = ok(await api.post("/v1/workflows", json=PARENT), 201)["id"]
        started = await api.post(
            f"/v1/workflows/{parent_wf}/runs", params={"wait": "true"}, json={"inputs": {}}
        )
        parent = ok(started)  # wait=true: 200 once the run waits for its review
        assert parent["status"] == "waiting_for_human"
        parent_path = f"/v1/workflows/{parent_wf}/runs/{parent['id']}"
        steps = ok(await api.get(f"{parent_path}/steps"))["data"]
        child_id = steps[0]["step_metadata"]["child_run_id"]
        child_path = f"/v1/workflows/{child_wf}/runs/{child_id}"
        assert await run_status(api, child_path) == "waiting_for_human"

        async with run_row_locked(store_url, UUID(child_id)):
            cancel = asyncio.create_task(api.post(f"{parent_path}/cancel"))
            async with asyncio.timeout(10):
                while await run_status(api, parent_path) != "cancelled":
                    await asyncio.sleep(0.02)
            await asyncio.sleep(HELD_S)
            assert await run_status(api, child_path) == "waiting_for_human"
            assert not cancel.done(), "the cancel answered before its child was cancelled"
        answered = ok(await asyncio.wait_for(cancel, 10), 202)
        assert answered["status"] == "cancelled"
        assert await run_status(api, child_path) == "cancelled"
        reviews = ok(await api.get("/v1/reviews"))["data"]
        assert reviews == []
