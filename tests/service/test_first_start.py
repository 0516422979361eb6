"""`stepline serve` says "first start on an empty database" only when it truly is one."""

from __future__ import annotations

from pathlib import Path

from service_defs import two_inputs

from stepline import service
from stepline.bootstrap import bootstrap
from stepline.service import Caller, ServiceContext
from stepline.settings import Settings
from stepline.store import Store

SERVER = "http://127.0.0.1:8123"


async def test_an_empty_database_is_announced_as_the_first_start(
    store: Store, tmp_path: Path
) -> None:
    made = await bootstrap(store, Settings(home=tmp_path), SERVER)

    assert made is not None and made.empty_database and made.created_organization
    text = made.announcement(tmp_path / "credentials")
    assert "first start on an empty database" in text
    assert "created organization 'default'" in text


async def test_a_database_with_workflows_but_no_key_is_not_called_empty(
    ctx: ServiceContext, store: Store, tmp_path: Path
) -> None:
    # As after `stepline run` and before any `stepline serve`.
    caller = Caller(await store.organizations.ensure())
    await service.create_workflow(ctx, caller, two_inputs())

    made = await bootstrap(store, Settings(home=tmp_path), SERVER)

    assert made is not None and not made.empty_database and not made.created_organization
    text = made.announcement(tmp_path / "credentials")
    assert "empty database" not in text and "first start" not in text
    assert "no API key" in text
    assert await bootstrap(store, Settings(home=tmp_path), SERVER) is None


async def test_an_organization_alone_is_not_an_empty_database(store: Store, tmp_path: Path) -> None:
    await store.organizations.ensure("acme")

    made = await bootstrap(store, Settings(home=tmp_path), SERVER)

    assert made is not None and not made.empty_database and made.created_organization
    assert "empty database" not in made.announcement(tmp_path / "credentials")
