"""`stepline files` and `stepline run --file` on the local database and file storage, as
an operator types them (real subprocesses on a private home)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.cli import STEPLINE, cli_env

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def stepline(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, *args],
        env=cli_env(home),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(home: Path, *args: str) -> str:
    done = stepline(home, *args)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def test_upload_list_get_delete_locally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "invoice.pdf"
    source.write_bytes(PDF)
    made: dict[str, Any] = json.loads(ok(home, "files", "upload", str(source), "--json"))
    assert made["filename"] == "invoice.pdf" and made["mime_type"] == "application/pdf"
    file_id = made["id"]

    listed = json.loads(ok(home, "files", "list", "--json"))
    assert [f["id"] for f in listed] == [file_id]
    assert "invoice.pdf" in ok(home, "files", "list")

    assert json.loads(ok(home, "files", "get", file_id))["size"] == len(PDF)
    target = tmp_path / "copy.pdf"
    ok(home, "files", "get", file_id, "-o", str(target))
    assert target.read_bytes() == PDF

    assert "deleted" in ok(home, "files", "delete", file_id)
    gone = stepline(home, "files", "get", file_id)
    assert gone.returncode == 2 and "not found" in gone.stderr and "Traceback" not in gone.stderr
    assert json.loads(ok(home, "files", "list", "--json")) == []


def test_a_malformed_id_is_a_usage_error(tmp_path: Path) -> None:
    done = stepline(tmp_path / "home", "files", "get", "nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_run_with_a_file_input(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        yaml.safe_dump(
            {
                "name": "takes-a-file",
                "inputs": {"type": "object", "properties": {"doc": {"type": "object"}}},
                "nodes": [
                    {"id": "echo", "type": "reshape", "config": {"output": "{{ inputs.doc }}"}}
                ],
            }
        )
    )
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    done = stepline(home, "run", str(workflow), "--file", f"doc={source}", "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    listed = json.loads(ok(home, "files", "list", "--json"))
    assert [f["filename"] for f in listed] == ["notes.txt"]
    assert listed[0]["id"] in done.stdout

    bad = stepline(home, "run", str(workflow), "--file", "doc")
    assert bad.returncode == 2 and "NAME=PATH" in bad.stderr
    missing = stepline(home, "run", str(workflow), "--file", f"doc={tmp_path / 'nope'}")
    assert missing.returncode == 2 and "not a readable file" in missing.stderr
