"""`stepline files` and `stepline runs start --file` against a real `stepline serve`,
through the SDK (the key of the test's own organization)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from support.cli import STEPLINE, cli_env
from support.server import ServeProcess

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def test_files_commands_on_a_server(
    api_server: ServeProcess, make_key: Any, tmp_path: Path
) -> None:
    key = make_key(f"cli-files-{uuid.uuid4().hex[:8]}")
    env = cli_env(tmp_path / "home", STEPLINE_SERVER=api_server.base_url, STEPLINE_API_KEY=key)

    def ok(*args: str) -> str:
        done = subprocess.run(
            [STEPLINE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        return done.stdout

    source = tmp_path / "invoice.pdf"
    source.write_bytes(PDF)
    file_id = ok("files", "upload", str(source)).strip()
    assert json.loads(ok("files", "get", file_id))["mime_type"] == "application/pdf"
    assert [f["id"] for f in json.loads(ok("files", "list", "--json"))] == [file_id]
    target = tmp_path / "copy.pdf"
    ok("files", "get", file_id, "-o", str(target))
    assert target.read_bytes() == PDF

    headers = {"Authorization": f"Bearer {key}"}
    definition = {
        "name": "takes-a-file",
        "inputs": {"type": "object", "properties": {"doc": {"type": "object"}}},
        "nodes": [{"id": "echo", "type": "reshape", "config": {"output": "{{ inputs.doc }}"}}],
    }
    created = httpx.post(f"{api_server.base_url}/v1/workflows", json=definition, headers=headers)
    assert created.status_code == 201
    run = json.loads(ok("runs", "start", "takes-a-file", "--file", f"doc={source}", "--json"))
    uploaded = json.loads(ok("files", "list", "--json"))
    assert len(uploaded) == 2
    assert run["inputs"] == {"doc": {"file_id": uploaded[0]["id"]}}

    ok("files", "delete", file_id)
    assert [f["id"] for f in json.loads(ok("files", "list", "--json"))] == [uploaded[0]["id"]]
