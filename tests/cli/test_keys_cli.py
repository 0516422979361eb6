"""`stepline keys` as an operator types it: real subprocesses on a private SQLite home."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from stepline.store import Store
from stepline.store.keys import ApiKeyRecord
from support.cli import stepline


def authenticate(home: Path, secret: str) -> ApiKeyRecord | None:
    """What the server would make of the key, read from the same database file."""

    async def main() -> ApiKeyRecord | None:
        store = await Store.connect(f"sqlite+aiosqlite:///{home / 'stepline.db'}")
        try:
            return await store.keys.authenticate(secret)
        finally:
            await store.close()

    return asyncio.run(main())


def create_key(home: Path, *args: str) -> str:
    done = stepline("keys", "create", "--create-org", *args, home=home)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def list_json(home: Path, org: str) -> list[dict[str, Any]]:
    done = stepline("keys", "list", "--org", org, "--json", home=home)
    assert done.returncode == 0, done.stderr
    keys: list[dict[str, Any]] = json.loads(done.stdout)
    return keys


def assert_usage_error(done: Any, *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_create_prints_a_working_key_alone_on_the_last_line(tmp_path: Path) -> None:
    done = stepline(
        "keys", "create", "--org", "acme", "--create-org", "--scope", "read", "--scope", "run",
        "--name", "ci", home=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    secret = done.stdout.splitlines()[-1]
    assert secret == done.stdout.strip()  # nothing else on stdout: `KEY=$(stepline keys ...)`
    assert secret.startswith("stp_") and " " not in secret
    assert "acme" in done.stderr and "shown once" in done.stderr
    key = authenticate(tmp_path, secret)
    assert key is not None
    assert key.scopes == ["read", "run"]
    assert key.name == "ci"
    assert str(key.id) in done.stderr


def test_create_defaults_to_admin_and_reuses_the_organization(tmp_path: Path) -> None:
    first = authenticate(tmp_path, create_key(tmp_path, "--org", "acme"))
    second = authenticate(tmp_path, create_key(tmp_path, "--org", "acme", "--scope", "write,run"))
    other = authenticate(tmp_path, create_key(tmp_path, "--org", "globex"))

    assert first is not None and second is not None and other is not None
    assert first.scopes == ["admin"]
    assert second.scopes == ["run", "write"]
    assert first.organization_id == second.organization_id != other.organization_id


def test_create_with_a_workspace(tmp_path: Path) -> None:
    workspace = "6a1f5c3e-8d0b-4f7e-9a2c-1b3d5e7f9a0b"
    key = authenticate(tmp_path, create_key(tmp_path, "--org", "acme", "--workspace", workspace))
    assert key is not None and key.workspace_id == UUID(workspace)


def test_bad_arguments_are_usage_errors_without_a_traceback(tmp_path: Path) -> None:
    assert_usage_error(
        stepline("keys", "create", "--org", "acme", "--scope", "superuser", home=tmp_path),
        "unknown scope 'superuser'",
        "read, run, write, admin",
    )
    assert_usage_error(
        stepline("keys", "create", "--org", "acme", "--workspace", "ws-1", home=tmp_path),
        "--workspace 'ws-1' is not a UUID",
    )
    assert_usage_error(stepline("keys", "create", home=tmp_path), "--org")
    assert_usage_error(stepline("keys", "revoke", "not-a-uuid", home=tmp_path), "not a UUID")
    # Nothing was created by the refused commands.
    assert_usage_error(stepline("keys", "list", "--org", "acme", home=tmp_path), "acme")


def test_list_never_shows_a_secret(tmp_path: Path) -> None:
    secret = create_key(tmp_path, "--org", "acme", "--scope", "read", "--name", "reader")
    create_key(tmp_path, "--org", "acme", "--name", "ops")

    keys = list_json(tmp_path, "acme")
    assert [k["name"] for k in keys] == ["ops", "reader"]  # newest first
    reader = keys[1]
    assert reader["scopes"] == ["read"]
    assert secret.startswith(reader["prefix"]) and len(reader["prefix"]) < len(secret) // 2
    assert reader["revoked_at"] is None and reader["created_at"]
    assert all("key_hash" not in k and "secret" not in k for k in keys)

    table = stepline("keys", "list", "--org", "acme", home=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "reader" in table.stdout and reader["id"] in table.stdout
    for listing in (table.stdout, json.dumps(keys)):
        assert secret not in listing
        assert secret[len(reader["prefix"]) :] not in listing


def test_list_defaults_to_the_default_organization(tmp_path: Path) -> None:
    assert_usage_error(stepline("keys", "list", home=tmp_path), "'default'")
    create_key(tmp_path, "--org", "default", "--name", "mine")
    create_key(tmp_path, "--org", "acme", "--name", "theirs")

    done = stepline("keys", "list", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [k["name"] for k in json.loads(done.stdout)] == ["mine"]


def test_revoke_stops_the_key_and_is_idempotent(tmp_path: Path) -> None:
    secret = create_key(tmp_path, "--org", "acme")
    key = authenticate(tmp_path, secret)
    assert key is not None

    done = stepline("keys", "revoke", str(key.id), "--org", "acme", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "revoked" in done.stdout
    assert authenticate(tmp_path, secret) is None
    revoked_at = list_json(tmp_path, "acme")[0]["revoked_at"]
    assert revoked_at is not None

    again = stepline("keys", "revoke", str(key.id), "--org", "acme", home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert list_json(tmp_path, "acme")[0]["revoked_at"] == revoked_at  # the first time stands


def test_revoke_only_within_the_named_organization(tmp_path: Path) -> None:
    secret = create_key(tmp_path, "--org", "acme")
    create_key(tmp_path, "--org", "globex")
    key = authenticate(tmp_path, secret)
    assert key is not None

    done = stepline("keys", "revoke", str(key.id), "--org", "globex", home=tmp_path)
    assert_usage_error(done, f"API key {key.id} not found")
    assert authenticate(tmp_path, secret) is not None


def test_create_refuses_an_organization_that_does_not_exist(tmp_path: Path) -> None:
    create_key(tmp_path, "--org", "acme")
    done = stepline("keys", "create", "--org", "acmee", home=tmp_path)
    assert_usage_error(done, "no organization named 'acmee'", "--create-org")
    assert done.stdout == ""
    # Nothing was created: the mistyped organization still does not exist.
    assert_usage_error(stepline("keys", "list", "--org", "acmee", home=tmp_path), "'acmee'")


def test_create_without_create_org_works_for_an_existing_organization(tmp_path: Path) -> None:
    first = authenticate(tmp_path, create_key(tmp_path, "--org", "acme"))
    done = stepline("keys", "create", "--org", "acme", "--scope", "read", home=tmp_path)
    assert done.returncode == 0, done.stderr
    second = authenticate(tmp_path, done.stdout.splitlines()[-1])
    assert first is not None and second is not None
    assert second.organization_id == first.organization_id and second.scopes == ["read"]
