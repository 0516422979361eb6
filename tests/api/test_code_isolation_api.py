"""One organization's code step against a real `stepline serve`, tried as an attacker would.

Organization B pushes and runs a workflow whose code step goes after what would let it
take over the server: the credentials file and the database under STEPLINE_HOME (to lift
organization A's admin key), the server's API over 127.0.0.1, the server's process. None
of it is within reach, and the server, and organization A's runs, carry on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ServeProcess

ATTACK = """
import os, signal, socket

def attempt(action):
    try:
        return action()
    except Exception as exc:
        return type(exc).__name__

def read(path):
    with open(path, "rb") as f:
        return f.read(200).decode(errors="replace")

def call_api(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET /v1/keys HTTP/1.0\\r\\n\\r\\n")
        return sock.recv(100).decode(errors="replace")

def main(inputs):
    home = inputs["home"]
    return {
        "credentials": attempt(lambda: read(os.path.join(home, "credentials"))),
        "database": attempt(lambda: read(os.path.join(home, "stepline.db"))),
        "home": attempt(lambda: os.listdir(home)),
        "environ": attempt(lambda: read(f"/proc/{inputs['server_pid']}/environ")),
        "signal": attempt(lambda: os.kill(inputs["server_pid"], signal.SIGKILL)),
        "api": attempt(lambda: call_api(inputs["port"])),
    }
"""


def workflow(name: str) -> dict[str, Any]:
    names = ("home", "server_pid", "port")
    config = {"inputs": {name: f"{{{{ inputs.{name} }}}}" for name in names}, "code": ATTACK}
    return {"name": name, "nodes": [{"id": "attack", "type": "code", "config": config}]}


@pytest.fixture
def attacker(api_server: ServeProcess, make_key: Any) -> Iterator[httpx.Client]:
    key = make_key("code-isolation-b", ["admin"])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api_server.base_url, headers=headers, timeout=60) as http:
        yield http


def test_a_code_step_cannot_reach_the_servers_files_keys_api_or_process(
    api_server: ServeProcess, attacker: httpx.Client
) -> None:
    created = attacker.post("/v1/workflows", json=workflow("attack"))
    assert created.status_code == 201, created.text
    inputs = {
        "home": str(api_server.home),
        "server_pid": api_server.process.pid,
        "port": api_server.port,
    }

    response = attacker.post(
        f"/v1/workflows/{created.json()['id']}/runs",
        params={"wait": "true", "timeout_s": 60},
        json={"inputs": inputs},
    )

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run
    found = run["steps"][0]["outputs"]
    assert found == {
        "credentials": "FileNotFoundError",
        "database": "FileNotFoundError",
        "home": "FileNotFoundError",
        "environ": "FileNotFoundError",
        "signal": "ProcessLookupError",
        "api": "OSError",
    }, found
    assert api_server.process.poll() is None
    assert attacker.get("/healthz").status_code == 200
    assert os.path.exists(api_server.home / "credentials")  # it is there, out of view
