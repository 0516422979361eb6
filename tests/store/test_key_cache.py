"""Live API keys are remembered on SQLite, and forgotten as soon as anything commits.

A revoke, an expiry set or any other change, made through this store or through another
connection to the file (as `stepline keys revoke` does next to a running server), takes
effect at the very next authentication.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from stepline.records import utcnow
from stepline.store import Store
from stepline.store.tables import api_keys


@pytest.fixture
async def other(store_url: str) -> AsyncIterator[Store]:
    """A second store on the same database: another process, as far as the first knows."""
    second = await Store.connect(store_url)
    yield second
    await second.close()


def _count_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads = [0]
    real = store.keys._read

    async def counted(fn: Any) -> Any:
        reads[0] += 1
        return await real(fn)

    monkeypatch.setattr(store.keys, "_read", counted)
    return reads


async def test_a_live_key_is_looked_up_once_on_sqlite(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await store.organizations.ensure()
    created = await store.keys.create(org, name="k", scopes=["read"])
    reads = _count_reads(store, monkeypatch)
    for _ in range(3):
        key = await store.keys.authenticate(created.secret)
        assert key is not None and key.id == created.record.id
    assert reads[0] == (1 if store.dialect == "sqlite" else 3)


async def test_a_revoke_through_this_store_takes_effect_at_once(store: Store) -> None:
    org = await store.organizations.ensure()
    created = await store.keys.create(org, name="k", scopes=["read"])
    assert await store.keys.authenticate(created.secret) is not None
    await store.keys.revoke(org, created.record.id)
    assert await store.keys.authenticate(created.secret) is None


async def test_a_revoke_through_another_connection_takes_effect_at_once(
    store: Store, other: Store
) -> None:
    org = await store.organizations.ensure()
    created = await store.keys.create(org, name="k", scopes=["read"])
    kept = await store.keys.create(org, name="kept", scopes=["read"])
    for secret in (created.secret, kept.secret):
        assert await store.keys.authenticate(secret) is not None
    await other.keys.revoke(org, created.record.id)
    assert await store.keys.authenticate(created.secret) is None
    assert await store.keys.authenticate(kept.secret) is not None


async def test_any_change_to_a_key_elsewhere_is_seen_at_once(store: Store, other: Store) -> None:
    org = await store.organizations.ensure()
    created = await store.keys.create(org, name="k", scopes=["read"])
    assert await store.keys.authenticate(created.secret) is not None

    def expire(conn: sa.Connection) -> None:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.id == created.record.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    await other.writer.submit(expire)
    assert await store.keys.authenticate(created.secret) is None


async def test_unknown_and_malformed_keys_are_none(store: Store) -> None:
    org = await store.organizations.ensure()
    created = await store.keys.create(org, name="k", scopes=["read"])
    assert await store.keys.authenticate(created.secret + "x") is None
    assert await store.keys.authenticate("not-a-key") is None
    assert await store.keys.authenticate(created.secret) is not None
