"""Secrets in the store (SQLite and PostgreSQL): ciphertexts by organization, workspace
and name; replaced in place; a workspace's own read before the organization's."""

from __future__ import annotations

import asyncio

import pytest

from stepline.records import new_id
from stepline.store import NotFoundError, Store
from stepline.store.secrets import SecretNotFoundError


async def test_put_creates_then_replaces_in_place(store: Store) -> None:
    org = await store.organizations.ensure("acme")

    created, is_new = await store.secrets.put(org, None, "API_KEY", b"one")
    replaced, again_new = await store.secrets.put(org, None, "API_KEY", b"two")

    assert (is_new, again_new) == (True, False)
    assert replaced.id == created.id and replaced.created_at == created.created_at
    assert replaced.updated_at >= created.updated_at
    stored = await store.secrets.ciphertexts(org, None, ["API_KEY"])
    assert stored["API_KEY"].ciphertext == b"two"
    assert [s.name for s in await store.secrets.list(org)] == ["API_KEY"]


async def test_names_are_unique_per_organization_and_per_workspace(store: Store) -> None:
    acme, other = await store.organizations.ensure("acme"), await store.organizations.ensure("b")
    workspace = new_id()
    await store.secrets.put(acme, None, "TOKEN", b"acme")
    await store.secrets.put(acme, workspace, "TOKEN", b"acme-ws")
    await store.secrets.put(other, None, "TOKEN", b"other")
    await store.secrets.put(acme, None, "ANOTHER", b"x")

    assert [s.name for s in await store.secrets.list(acme)] == ["ANOTHER", "TOKEN"]
    assert [(s.name, s.workspace_id) for s in await store.secrets.list(acme, workspace)] == [
        ("TOKEN", workspace)
    ]
    assert [s.name for s in await store.secrets.list(other)] == ["TOKEN"]
    assert await store.secrets.get(other, None, "ANOTHER") is None


async def test_a_run_reads_its_workspace_secret_before_the_organization_one(
    store: Store,
) -> None:
    org = await store.organizations.ensure("acme")
    workspace, elsewhere = new_id(), new_id()
    await store.secrets.put(org, None, "TOKEN", b"org")
    await store.secrets.put(org, None, "ONLY_ORG", b"org-only")
    await store.secrets.put(org, workspace, "TOKEN", b"ws")
    await store.secrets.put(org, elsewhere, "ONLY_ELSEWHERE", b"no")

    found = await store.secrets.ciphertexts(
        org, workspace, ["TOKEN", "ONLY_ORG", "ONLY_ELSEWHERE", "MISSING"]
    )
    assert {name: s.ciphertext for name, s in found.items()} == {
        "TOKEN": b"ws",
        "ONLY_ORG": b"org-only",
    }
    assert found["TOKEN"].workspace_id == workspace and found["ONLY_ORG"].workspace_id is None
    without = await store.secrets.ciphertexts(org, None, ["TOKEN", "ONLY_ELSEWHERE"])
    assert {name: s.ciphertext for name, s in without.items()} == {"TOKEN": b"org"}


async def test_delete_is_scoped_and_a_missing_secret_is_not_found(store: Store) -> None:
    acme, other = await store.organizations.ensure("acme"), await store.organizations.ensure("b")
    await store.secrets.put(acme, None, "TOKEN", b"x")

    with pytest.raises(SecretNotFoundError):
        await store.secrets.delete(other, None, "TOKEN")
    with pytest.raises(SecretNotFoundError):
        await store.secrets.delete(acme, new_id(), "TOKEN")
    await store.secrets.delete(acme, None, "TOKEN")
    with pytest.raises(SecretNotFoundError):
        await store.secrets.delete(acme, None, "TOKEN")
    assert await store.secrets.list(acme) == []


async def test_put_into_a_missing_organization_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.secrets.put(new_id(), None, "TOKEN", b"x")


async def test_concurrent_puts_of_one_name_leave_one_secret(store_url: str) -> None:
    # Two stores (as two processes would): on PostgreSQL their inserts can race.
    first, second = await Store.connect(store_url), await Store.connect(store_url)
    try:
        org = await first.organizations.ensure("acme")
        results = await asyncio.gather(
            *(
                (first if n % 2 else second).secrets.put(org, None, "TOKEN", str(n).encode())
                for n in range(8)
            )
        )
        assert sum(1 for _, created in results if created) == 1
        listed = await first.secrets.list(org)
        assert [s.name for s in listed] == ["TOKEN"]
    finally:
        await first.close()
        await second.close()
