"""`stepline secrets` and `stepline run` with secrets, as an operator types them: real
subprocesses on a private home, the value piped in, never on the command line."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import subprocess
import termios
from pathlib import Path
from typing import Any

import yaml

from support.cli import STEPLINE, cli_env
from support.http_server import LoopbackServer, loopback_server

VALUE = "sk-cli-91b7e2d4c0"


def stepline_with(
    home: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, *args],
        env=cli_env(home, **env),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def set_secret(home: Path, name: str, value: str, *args: str) -> None:
    done = stepline_with(home, "secrets", "set", name, *args, stdin=value + "\n")
    assert done.returncode == 0, done.stderr
    assert value not in done.stdout + done.stderr


def listed(home: Path, *args: str, **env: str) -> list[dict[str, Any]]:
    done = stepline_with(home, "secrets", "list", "--json", *args, **env)
    assert done.returncode == 0, done.stderr
    documents: list[dict[str, Any]] = json.loads(done.stdout)
    return documents


def test_set_list_delete_on_the_local_database(tmp_path: Path) -> None:
    set_secret(tmp_path, "API_KEY", VALUE)
    set_secret(tmp_path, "API_KEY", VALUE + "-2")  # replaced, still one
    set_secret(tmp_path, "OTHER", "x", "--org", "acme", "--create-org")

    assert [s["name"] for s in listed(tmp_path)] == ["API_KEY"]
    assert [s["name"] for s in listed(tmp_path, "--org", "acme")] == ["OTHER"]
    table = stepline_with(tmp_path, "secrets", "list")
    assert "API_KEY" in table.stdout and VALUE not in table.stdout

    # Encrypted at rest with a key file made private on first use.
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for path in tmp_path.glob("stepline.db*"):
        assert VALUE.encode() not in path.read_bytes()

    done = stepline_with(tmp_path, "secrets", "delete", "API_KEY")
    assert done.returncode == 0, done.stderr
    assert listed(tmp_path) == []
    assert_usage_error(stepline_with(tmp_path, "secrets", "delete", "API_KEY"), "not found")


def test_the_value_never_comes_from_the_command_line(tmp_path: Path) -> None:
    done = stepline_with(tmp_path, "secrets", "set", "API_KEY", VALUE)
    assert done.returncode == 2 and "unexpected extra argument" in done.stderr.lower()
    assert_usage_error(
        stepline_with(tmp_path, "secrets", "set", "API_KEY"), "nothing came on stdin"
    )
    assert_usage_error(
        stepline_with(tmp_path, "secrets", "set", "9bad", stdin="v"), "not a secret name"
    )
    assert_usage_error(
        stepline_with(tmp_path, "secrets", "list", "--org", "nobody"), "no organization"
    )


def test_a_malformed_operator_key_is_a_clear_error(tmp_path: Path) -> None:
    done = stepline_with(
        tmp_path, "secrets", "set", "API_KEY", stdin=VALUE, STEPLINE_SECRETS_KEY="too-short"
    )
    assert_usage_error(done, "STEPLINE_SECRETS_KEY is not a valid secrets key")


def workflow_file(folder: Path, url: str) -> Path:
    definition = {
        "name": "uses-secrets",
        "nodes": [
            {
                "id": "call",
                "type": "api_call",
                "config": {
                    "method": "POST",
                    "url": url + "/echo",
                    "headers": {"Authorization": "Bearer {{ secrets.API_KEY }}"},
                    "json": {"also": "{{ secrets.FROM_ENV }}"},
                },
            }
        ],
    }
    path = folder / "uses-secrets.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def echo_server() -> Any:
    return loopback_server({"/echo": lambda hit, body: (200, {}, {"got": body})})


def test_stepline_run_reads_stored_secrets_and_its_own_environment(tmp_path: Path) -> None:
    set_secret(tmp_path, "API_KEY", VALUE)
    server: LoopbackServer
    with echo_server() as server:
        path = workflow_file(tmp_path, server.url)
        done = stepline_with(
            tmp_path, "run", str(path), "--json", STEPLINE_SECRET_FROM_ENV="env-value-3c9"
        )
        assert done.returncode == 0, done.stderr
        (received,) = server.received
    assert received.headers["Authorization"] == f"Bearer {VALUE}"
    assert json.loads(received.body) == {"also": "env-value-3c9"}
    for text in (done.stdout, done.stderr):
        assert VALUE not in text and "env-value-3c9" not in text
    document = json.loads(done.stdout)
    (step,) = document["steps"]
    assert step["inputs"]["headers"] == {"Authorization": "***"}
    assert step["inputs"]["json"] == {"also": "***"}
    assert step["outputs"]["body"] == {"got": {"also": "***"}}
    for path in tmp_path.glob("stepline.db*"):
        data = path.read_bytes()
        assert VALUE.encode() not in data and b"env-value-3c9" not in data


def test_stepline_run_names_each_unset_secret_and_exits_2(tmp_path: Path) -> None:
    with echo_server() as server:
        path = workflow_file(tmp_path, server.url)
        done = stepline_with(tmp_path, "run", str(path))
        assert server.received == []
    assert_usage_error(
        done,
        "secrets that are not set",
        "node 'call', field $.nodes[0].config.headers.Authorization: secret 'API_KEY'",
        "node 'call', field $.nodes[0].config.json.also: secret 'FROM_ENV'",
        "stepline secrets set",
    )


def test_at_a_terminal_the_value_is_asked_for_twice_and_not_echoed(tmp_path: Path) -> None:
    controller, terminal = os.openpty()

    def take_the_terminal() -> None:  # runs in the child: the pty becomes its /dev/tty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [STEPLINE, "secrets", "set", "TYPED"],
        env=cli_env(tmp_path),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        preexec_fn=take_the_terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        for _ in range(2):  # the value, then its confirmation
            while b": " not in seen.rsplit(b"\n", 1)[-1]:
                seen += os.read(controller, 1024)
            os.write(controller, VALUE.encode() + b"\n")
            seen += b"\n"
        assert process.wait(60) == 0
        with contextlib.suppress(OSError):  # EIO once the child closed its end
            while chunk := os.read(controller, 1024):
                seen += chunk
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert b"Value of TYPED" in seen and b"Secret TYPED set" in seen
    assert VALUE.encode() not in seen
    assert [s["name"] for s in listed(tmp_path)] == ["TYPED"]


def test_a_mistyped_organization_is_refused_not_created(tmp_path: Path) -> None:
    set_secret(tmp_path, "API_KEY", VALUE, "--org", "acme", "--create-org")
    done = stepline_with(tmp_path, "secrets", "set", "API_KEY", "--org", "acmee", stdin=VALUE)
    assert_usage_error(done, "no organization named 'acmee'", "--create-org")
    assert VALUE not in done.stdout + done.stderr
    # Nothing was created under the typo; the real organization keeps its secret.
    done = stepline_with(tmp_path, "secrets", "list", "--org", "acmee")
    assert_usage_error(done, "no organization named 'acmee'")
    assert [s["name"] for s in listed(tmp_path, "--org", "acme")] == ["API_KEY"]


def test_the_default_organization_needs_no_flag(tmp_path: Path) -> None:
    set_secret(tmp_path, "API_KEY", VALUE)  # a fresh home: `default` is made as everywhere
    assert [s["name"] for s in listed(tmp_path)] == ["API_KEY"]
