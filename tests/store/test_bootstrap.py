"""The first start mints one admin key and saves it; every later or racing start does not."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from stepline.bootstrap import first_start
from stepline.credentials import credentials_path, load_credentials
from stepline.settings import Settings
from stepline.store import Store

SERVER = "http://127.0.0.1:8123"


def settings_at(home: Path) -> Settings:
    return Settings(home=home)


async def test_first_start_on_an_empty_database_mints_and_saves_an_admin_key(
    store: Store, tmp_path: Path
) -> None:
    secret = await first_start(store, settings_at(tmp_path), SERVER)

    assert secret is not None
    key = await store.keys.authenticate(secret)
    assert key is not None
    assert key.scopes == ["admin"]
    assert key.name == "bootstrap"
    organization = await store.organizations.get(key.organization_id)
    assert organization is not None and organization.name == "default"

    saved = load_credentials(tmp_path)
    assert saved is not None
    assert (saved.api_key, saved.server, saved.organization_id) == (
        secret,
        SERVER,
        key.organization_id,
    )
    assert stat.S_IMODE(credentials_path(tmp_path).stat().st_mode) == 0o600


async def test_a_second_start_mints_nothing_and_keeps_the_saved_key(
    store: Store, tmp_path: Path
) -> None:
    first = await first_start(store, settings_at(tmp_path), SERVER)
    assert first is not None
    before = credentials_path(tmp_path).read_bytes()

    assert await first_start(store, settings_at(tmp_path), "http://elsewhere:1") is None

    assert credentials_path(tmp_path).read_bytes() == before
    organization = await store.organizations.find("default")
    assert organization is not None
    assert len(await store.keys.list(organization.id)) == 1


async def test_a_database_with_a_key_is_left_alone(store: Store, tmp_path: Path) -> None:
    acme = await store.organizations.ensure("acme")
    created = await store.keys.create(acme, name="ops", scopes=["read"])
    await store.keys.revoke(acme, created.record.id)  # even a revoked key counts

    assert await first_start(store, settings_at(tmp_path), SERVER) is None

    assert not credentials_path(tmp_path).exists()
    assert await store.organizations.find("default") is None


async def test_an_organization_without_keys_gets_its_admin_key(
    store: Store, tmp_path: Path
) -> None:
    # `stepline run` creates "default" before anyone serves: that must not block the bootstrap.
    default = await store.organizations.ensure()

    secret = await first_start(store, settings_at(tmp_path), SERVER)

    assert secret is not None
    key = await store.keys.authenticate(secret)
    assert key is not None and key.organization_id == default


async def test_servers_starting_together_mint_exactly_one_key(
    store_url: str, tmp_path: Path
) -> None:
    # Separate stores: separate writers and connections, as two `stepline serve` processes.
    stores = [await Store.connect(store_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(first_start(s, settings_at(tmp_path), SERVER) for s in stores)
        )
        minted = [secret for secret in results if secret is not None]
        assert len(minted) == 1, results
        organization = await stores[0].organizations.find("default")
        assert organization is not None
        assert len(await stores[0].keys.list(organization.id)) == 1
        saved = load_credentials(tmp_path)
        assert saved is not None and saved.api_key == minted[0]
    finally:
        for s in stores:
            await s.close()


async def test_an_unwritable_home_still_returns_the_key(store: Store, tmp_path: Path) -> None:
    # The key exists in the database either way; `serve` prints it even if the file fails.
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the home folder should be")

    secret = await first_start(store, settings_at(home), SERVER)

    assert secret is not None
    assert await store.keys.authenticate(secret) is not None
