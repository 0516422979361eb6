"""`stepline secrets` over HTTP: real subprocesses against a real `stepline serve`, the
server and key in the environment as for a user on another machine."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from support.cli import STEPLINE, cli_env
from support.server import ServeProcess

VALUE = "sk-remote-3e8f1a"


def remote(
    home: Path, server: ServeProcess, key: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, "secrets", *args],
        env=cli_env(home, STEPLINE_SERVER=server.base_url, STEPLINE_API_KEY=key),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_set_list_delete_through_the_server(
    tmp_path: Path, api_server: ServeProcess, org_key: str
) -> None:
    done = remote(tmp_path, api_server, org_key, "set", "REMOTE_KEY", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert api_server.base_url in done.stdout and VALUE not in done.stdout + done.stderr

    listed = remote(tmp_path, api_server, org_key, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)] == ["REMOTE_KEY"]
    assert VALUE not in listed.stdout
    # Nothing of it on this machine: no local key file, no local database.
    assert not (tmp_path / "secrets.key").exists() and not (tmp_path / "stepline.db").exists()

    assert remote(tmp_path, api_server, org_key, "delete", "REMOTE_KEY").returncode == 0
    again = remote(tmp_path, api_server, org_key, "delete", "REMOTE_KEY")
    assert again.returncode == 2 and "not found" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_key_without_write_scope_is_refused(
    tmp_path: Path, api_server: ServeProcess, make_key: Callable[..., str]
) -> None:
    reader = make_key("cli-secrets-reader", ["read"])
    done = remote(tmp_path, api_server, reader, "set", "X", stdin="v")
    assert done.returncode == 2 and "403" in done.stderr
