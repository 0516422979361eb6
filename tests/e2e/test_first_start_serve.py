"""`stepline serve` calls its start "first start on an empty database" only when it is:
after a local `stepline run`, the database has an organization and a workflow already."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import stepline
from support.server import start_server

EMPTY = "first start on an empty database"


def test_serve_on_an_empty_home_says_first_start(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        assert server.admin_key.startswith("stp_")
        assert EMPTY in server.log()
    finally:
        server.stop()


def test_serve_after_a_local_run_does_not_call_the_database_empty(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    workflow = tmp_path / "hello.json"
    workflow.write_text(
        json.dumps(
            {
                "name": "hello",
                "nodes": [{"id": "say", "type": "reshape", "config": {"output": {"hi": 1}}}],
                "edges": [],
            }
        )
    )
    ran = stepline("run", str(workflow), home=home)
    assert ran.returncode == 0, ran.stderr

    server = start_server(home)
    try:
        log = server.log()
        assert server.admin_key.startswith("stp_"), log
        assert EMPTY not in log
        assert "the database has no API key yet" in log
    finally:
        server.stop()
