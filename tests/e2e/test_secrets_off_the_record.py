"""A secret used every way a workflow can use one, against a real `stepline serve` on
SQLite and on PostgreSQL: the real value reaches the HTTP server it is meant for, and not
one occurrence of it is anywhere the run is recorded or served: the database (every byte
of the SQLite file, every row of the PostgreSQL tables), every API response about the
run, its event stream, its downloads, its diagram, and the server's log."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from stepline.store.tables import metadata
from support.cli import STEPLINE, cli_env
from support.http_server import LoopbackServer, loopback_server
from support.server import ServeProcess, start_server

pytestmark = pytest.mark.slow

VALUE = "sk-e2e/4f9a+0c7b=d31"
FORMS = {VALUE, quote(VALUE, safe=""), quote(VALUE), quote_plus(VALUE)}

SHOW = """
import sys

def main(inputs):
    key = inputs["key"]
    print("the key is", key)
    print(repr({"key": key}), file=sys.stderr)
    return {"key": key, "url": "https://example.com/?token=" + key}
"""

BOOM = """
def main(inputs):
    raise ValueError("the upstream refused " + inputs["key"])
"""


def workflow(url: str) -> dict[str, Any]:
    key = "{{ secrets.API_KEY }}"
    return {
        "name": "secrets-off-the-record",
        "nodes": [
            {
                "id": "call",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": f"{url}/echo?token={key}",
                    "headers": {"Authorization": f"Bearer {key}", "X-Api-Key": key},
                    "json": {"key": key},
                },
            },
            {
                "id": "refused",
                "type": "api_call",
                "on_error": "continue",
                "config": {"url": f"{url}/refuse", "query": {"token": key}},
            },
            {"id": "show", "type": "code", "config": {"inputs": {"key": key}, "code": SHOW}},
            {
                "id": "boom",
                "type": "code",
                "on_error": "continue",
                "config": {"inputs": {"key": key}, "code": BOOM},
            },
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": [1, 2]},
                "body": {
                    "nodes": [
                        {
                            "id": "tag",
                            "type": "reshape",
                            "config": {"output": "{{ loop.item }}:" + key},
                        }
                    ]
                },
            },
            {
                "id": "report",
                "type": "end",
                "config": {
                    "output": {
                        "from_code": "{{ nodes.show.output.key }}",
                        "echoed": "{{ nodes.call.output.body }}",
                    }
                },
            },
        ],
        "edges": [
            {"from": "call", "to": "refused"},
            {"from": "refused", "to": "show"},
            {"from": "show", "to": "boom"},
            {"from": "boom", "to": "each"},
            {"from": "each", "to": "report"},
        ],
    }


@pytest.fixture
def target() -> Iterator[LoopbackServer]:
    routes = {
        "/echo": lambda hit, body: (200, {"Set-Cookie": "s=1"}, {"received": body}),
        "/refuse": lambda hit, body: (401, {}, {"error": "bad token"}),
    }
    with loopback_server(routes) as server:
        yield server


@pytest.fixture
def server(tmp_path: Path, empty_database_url: str) -> Iterator[ServeProcess]:
    env = {
        "STEPLINE_DATABASE_URL": empty_database_url,
        "STEPLINE_LOG_LEVEL": "DEBUG",
        # Code steps in a separate process only: this test is about the record, and must
        # not depend on namespaces being available on the machine that runs it.
        "STEPLINE_CODE_ISOLATION": "process",
    }
    process = start_server(tmp_path / "home", env=env)
    try:
        yield process
    finally:
        process.stop()


def set_secret_with_the_cli(server: ServeProcess, tmp_path: Path) -> None:
    done = subprocess.run(
        [STEPLINE, "secrets", "set", "API_KEY"],
        env=cli_env(
            tmp_path / "cli-home",
            STEPLINE_SERVER=server.base_url,
            STEPLINE_API_KEY=server.admin_key,
        ),
        input=VALUE + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert VALUE not in done.stdout + done.stderr


def read_everything(http: httpx.Client, workflow_id: str, run: dict[str, Any]) -> list[str]:
    """Every response the API gives about the run (and the workflow it ran)."""
    runs = f"/v1/workflows/{workflow_id}/runs"
    base = f"{runs}/{run['id']}"
    paths = [
        f"/v1/workflows/{workflow_id}",
        f"/v1/workflows/{workflow_id}/diagram?format=json",
        f"/v1/workflows/{workflow_id}/diagram?format=mermaid",
        runs,
        base,
        f"{base}/data",
        f"{base}/steps?limit=1000",
        f"{base}/steps?include_io=false",
        f"{base}/steps?status=error",
        f"{base}/download",
        f"{base}/download?format=ndjson",
        f"{base}/nodes/show/download",
        f"{base}/nodes/tag/download?format=ndjson",
        "/v1/secrets",
        "/v1/reviews",
    ]
    texts: list[str] = []
    for path in paths:
        response = http.get(path)
        assert response.status_code == 200, (path, response.text)
        texts.append(response.text)
    steps = http.get(f"{base}/steps?limit=1000").json()["data"]
    for step in steps:
        for key in (step["id"], step["step_id"]):
            response = http.get(f"{base}/steps/{key}")
            assert response.status_code == 200, response.text
            texts.append(response.text)
    with http.stream("GET", f"{base}/events") as events:
        assert events.status_code == 200
        texts.append(events.read().decode())
    assert "event: run.completed" in texts[-1]
    return texts


def database_text(url: str) -> bytes:
    """Everything the database holds, as bytes to search."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        files = sorted(Path(parsed.database).parent.glob(Path(parsed.database).name + "*"))
        assert files, "no database file"
        return b"".join(path.read_bytes() for path in files)

    async def dump() -> bytes:
        conn = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
        )
        try:
            rows = []
            for table in metadata.sorted_tables:
                rows += await conn.fetch(f"SELECT t::text AS row FROM {table.name} t")
            return "\n".join(row["row"] for row in rows).encode()
        finally:
            await conn.close()

    return asyncio.run(dump())


def test_a_secret_used_every_way_is_nowhere_on_the_record(
    server: ServeProcess,
    target: LoopbackServer,
    tmp_path: Path,
    empty_database_url: str,
) -> None:
    set_secret_with_the_cli(server, tmp_path)
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        created = http.post("/v1/workflows", json=workflow(target.url))
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        started = http.post(
            f"/v1/workflows/{workflow_id}/runs?wait=true&timeout_s=120",
            # Someone passes the key as an input too: it is recorded masked.
            json={"inputs": {"note": f"my key is {VALUE}"}},
        )
        assert started.status_code == 200, started.text
        run = started.json()
        assert run["status"] == "completed", run["error"]
        texts = [started.text, *read_everything(http, workflow_id, run)]

    # The secret did its job on the wire.
    call, refused = target.received
    assert call.headers["Authorization"] == f"Bearer {VALUE}"
    assert call.headers["X-Api-Key"] == VALUE
    assert call.target == f"/echo?token={VALUE}"
    assert json.loads(call.body) == {"key": VALUE}
    assert refused.target == f"/refuse?token={quote(VALUE, safe='')}"

    # ...and the record shows that it was used, masked.
    steps = {step["step_id"]: step for step in run["steps"]}
    assert run["inputs"] == {"note": "my key is ***"}
    assert steps["call"]["inputs"]["headers"] == {"Authorization": "***", "X-Api-Key": "***"}
    assert steps["show"]["outputs"] == {"key": "***", "url": "https://example.com/?token=***"}
    assert "the key is ***" in json.dumps(steps["show"]["step_metadata"])
    assert steps["boom"]["status"] == "error"
    assert steps["boom"]["error"] is not None and "refused ***" in steps["boom"]["error"]
    assert steps["refused"]["error"] is not None and "token=***" in steps["refused"]["error"]
    assert steps["each_iter_1_tag"]["outputs"] == "2:***"
    assert run["output"]["from_code"] == "***"

    log = server.log()
    server.stop()
    stored = database_text(empty_database_url)
    for form in FORMS:
        for text in texts:
            assert form not in text
        assert form not in log
        assert form.encode() not in stored
    assert b"secrets" in stored or "postgres" in empty_database_url  # the table is there
