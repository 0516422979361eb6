"""`stepline collections` over HTTP: real subprocesses against a real `stepline serve`,
the server and key in the environment, through the SDK."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from support.cli import STEPLINE, cli_env
from support.pdfs import build_pdf
from support.server import ServeProcess


def remote(
    home: Path, server: ServeProcess, key: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, "collections", *args],
        env=cli_env(home, STEPLINE_SERVER=server.base_url, STEPLINE_API_KEY=key),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def remote_json(home: Path, server: ServeProcess, key: str, *args: str) -> Any:
    done = remote(home, server, key, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_create_add_search_delete_through_the_server(
    tmp_path: Path, api_server: ServeProcess, org_key: str
) -> None:
    created = remote_json(tmp_path, api_server, org_key, "create", "faq")
    assert created["name"] == "faq"
    remote_json(
        tmp_path, api_server, org_key, "add", "faq", "--text", "Parking is free.", "--source", "p"
    )
    notes = tmp_path / "notes.md"
    notes.write_text("# Lunch\n\nLunch is served at noon in the canteen.")
    added = remote_json(tmp_path, api_server, org_key, "add", created["id"], str(notes))
    assert added["source"] == "notes.md"

    found = remote_json(tmp_path, api_server, org_key, "search", "faq", "when is lunch")
    assert found["results"][0]["source"] == "notes.md"
    # A PDF is uploaded as a file and parsed by the server, page by page.
    manual = tmp_path / "manual.pdf"
    manual.write_bytes(build_pdf(["Welcome.", "The gym opens at six in the morning."]))
    added = remote_json(tmp_path, api_server, org_key, "add", "faq", str(manual))
    assert added["source"] == "manual.pdf"
    found = remote_json(tmp_path, api_server, org_key, "search", "faq", "gym opening")
    best = found["results"][0]
    assert best["source"] == "manual.pdf" and best["page"] == 2 and best["file_id"]
    listed = remote_json(tmp_path, api_server, org_key, "list")
    assert [c["name"] for c in listed] == ["faq"]

    assert remote(tmp_path, api_server, org_key, "delete", "faq").returncode == 0
    gone = remote(tmp_path, api_server, org_key, "search", "faq", "lunch")
    assert gone.returncode == 2 and "faq" in gone.stderr and "Traceback" not in gone.stderr
