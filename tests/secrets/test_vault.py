"""The vault: secrets encrypted before the store sees them, opened only where they were
set (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from stepline.records import new_id
from stepline.secrets.cipher import KEY_FILE, SecretDecryptError, SecretKeyError, load_cipher
from stepline.secrets.vault import Vault
from stepline.settings import Settings
from stepline.store import Store
from stepline.store.tables import secrets_table


def vault(store: Store, home: Path) -> Vault:
    return Vault(store.secrets, lambda create: load_cipher(Settings(home=home), create=create))


async def test_set_then_read_for_a_run(store: Store, tmp_path: Path) -> None:
    org = await store.organizations.ensure("acme")
    workspace = new_id()
    secrets = vault(store, tmp_path)
    await secrets.set(org, None, "TOKEN", "org-value")
    await secrets.set(org, workspace, "TOKEN", "workspace-value")
    await secrets.set(org, None, "OTHER", "other-value")

    assert await secrets.values(org, None, ["TOKEN", "OTHER", "MISSING"]) == {
        "TOKEN": "org-value",
        "OTHER": "other-value",
    }
    assert await secrets.values(org, workspace, ["TOKEN", "OTHER"]) == {
        "TOKEN": "workspace-value",
        "OTHER": "other-value",
    }
    # Nothing readable at rest.
    rows = await store.database.read(
        lambda conn: conn.execute(sa.select(secrets_table.c.ciphertext)).scalars().all()
    )
    assert all(b"value" not in bytes(row) for row in rows)


async def test_bad_names_and_values_are_refused(store: Store, tmp_path: Path) -> None:
    org = await store.organizations.ensure("acme")
    secrets = vault(store, tmp_path)
    for name, value in (("1X", "v"), ("A-B", "v"), ("OK", ""), ("OK", "x" * (64 * 1024 + 1))):
        with pytest.raises(ValueError):
            await secrets.set(org, None, name, value)
    assert await store.secrets.list(org) == []


async def test_a_row_moved_to_another_organization_does_not_open(
    store: Store, tmp_path: Path
) -> None:
    acme, mallory = await store.organizations.ensure("acme"), await store.organizations.ensure("m")
    secrets = vault(store, tmp_path)
    await secrets.set(acme, None, "TOKEN", "acme-only")

    def move(conn: sa.Connection) -> None:
        conn.execute(sa.update(secrets_table).values(organization_id=mallory))

    await store.writer.submit(move)
    with pytest.raises(SecretDecryptError, match="'TOKEN'"):
        await secrets.values(mallory, None, ["TOKEN"])


async def test_reading_without_the_key_is_an_error_and_makes_no_key(
    store: Store, tmp_path: Path
) -> None:
    org = await store.organizations.ensure("acme")
    await vault(store, tmp_path / "setter").set(org, None, "TOKEN", "v")

    reader = tmp_path / "worker"
    with pytest.raises(SecretKeyError, match="STEPLINE_SECRETS_KEY"):
        await vault(store, reader).values(org, None, ["TOKEN"])
    assert not (reader / KEY_FILE).exists()
    # No secret stored under a name: no key is needed to say so.
    assert await vault(store, reader).values(org, None, ["NONE_HERE"]) == {}
