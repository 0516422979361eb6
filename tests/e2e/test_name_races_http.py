"""Two `stepline serve` replicas on one database, two clients racing for one workflow name:
exactly one request wins, the other is a 409 in the error envelope naming the winner.

Each replica writes through its own store, so on PostgreSQL the two requests' transactions
run at once and only the database's unique index can tell them apart; on SQLite the
file's write lock orders them. Both databases run it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.server import ServeProcess, make_key, start_server

ROUNDS = 5

DEFINITION: dict[str, Any] = {
    "name": "raced",
    "nodes": [{"id": "only", "type": "reshape", "config": {"output": 1}}],
}


def named(name: str) -> dict[str, Any]:
    return {**DEFINITION, "name": name}


@pytest.fixture
def replicas(tmp_path: Path, store_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of two servers on the database of `store_url`, with one organization's key."""
    servers: list[ServeProcess] = []
    clients: list[httpx.Client] = []
    try:
        for name in ("one", "two"):
            env = {"STEPLINE_DATABASE_URL": store_url}
            servers.append(start_server(tmp_path / name, env=env))
        key = make_key(store_url, "racers")
        for server in servers:
            headers = {"Authorization": f"Bearer {key}"}
            clients.append(httpx.Client(base_url=server.base_url, headers=headers, timeout=30))
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()


def together(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Send the requests at once: each thread waits at one barrier, then sends."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(released, calls))


def created(client: httpx.Client, name: str) -> str:
    response = client.post("/v1/workflows", json=named(name))
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


def one_winner(responses: list[httpx.Response], success: int, name: str) -> str:
    """The winner's id, after checking the loser's 409 names it and the name."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [success, 409], [r.text for r in responses]
    won = next(r for r in responses if r.status_code == success)
    lost = next(r for r in responses if r.status_code == 409)
    winner: str = won.json()["id"]
    body = lost.json()
    assert body["request_id"] == lost.headers["X-Request-Id"]
    error = body["error"]
    assert error["code"] == "conflict"
    assert repr(name) in error["message"] and winner in error["message"]
    assert [d["field"] for d in error["details"]] == ["body.name"]
    return winner


def holders(client: httpx.Client, name: str) -> list[str]:
    listing = client.get("/v1/workflows", params={"name": name})
    assert listing.status_code == 200, listing.text
    return [w["id"] for w in listing.json()["data"]]


def test_two_replicas_racing_for_one_name_answer_one_success_and_a_409(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    one, two = replicas
    for round_ in range(ROUNDS):
        # Renames: PATCH two workflows to one new name, through different replicas.
        a, b = created(one, f"a-{round_}"), created(two, f"b-{round_}")
        name = f"taken-{round_}"
        responses = together(
            lambda: one.patch(f"/v1/workflows/{a}", json={"name": name}),  # noqa: B023
            lambda: two.patch(f"/v1/workflows/{b}", json={"name": name}),  # noqa: B023
        )
        winner = one_winner(responses, 200, name)
        assert holders(one, name) == [winner]
        # Creates: POST one name twice.
        name = f"new-{round_}"
        responses = together(
            lambda: one.post("/v1/workflows", json=named(name)),  # noqa: B023
            lambda: two.post("/v1/workflows", json=named(name)),  # noqa: B023
        )
        winner = one_winner(responses, 201, name)
        assert holders(two, name) == [winner]
