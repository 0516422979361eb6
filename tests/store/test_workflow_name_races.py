"""Workflow names under concurrent writers: two stores (two processes' worth of writers on
one database) give workflows the same name at the same moment; exactly one wins.

On PostgreSQL the two transactions really run at once, so the name checks of both can
pass before either writes: only the database's unique index tells them apart. On SQLite
the file's write lock serializes them; the same assertions hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import pytest
from store_helpers import DEFINITION

from stepline.store import SavedWorkflow, Store, WorkflowNameTakenError

ROUNDS = 8
"""Races per test: each round is a fresh pair of writers released together."""


def named(name: str) -> dict[str, Any]:
    return {**DEFINITION, "name": name}


@pytest.fixture
async def stores(store_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first, second = await Store.connect(store_url), await Store.connect(store_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def together(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the calls at once, released by one barrier; each outcome or its exception."""
    barrier = asyncio.Barrier(len(calls))

    async def released(call: Callable[[], Awaitable[Any]]) -> Any:
        await barrier.wait()
        return await call()

    return await asyncio.gather(*(released(call) for call in calls), return_exceptions=True)


def one_winner(outcomes: list[Any], name: str) -> UUID:
    """The winner's workflow id, after checking the other outcome is the name conflict."""
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1, f"{len(won)} writers took the name {name!r}: {outcomes}"
    winner = won[0].workflow.id if isinstance(won[0], SavedWorkflow) else won[0].id
    assert len(lost) == 1 and isinstance(lost[0], WorkflowNameTakenError), lost
    assert lost[0].name == name
    assert lost[0].holder == winner
    return winner


async def live_named(store: Store, org: UUID, name: str) -> list[UUID]:
    page = await store.workflows.page(org, name=name, limit=10)
    return [w.id for w in page.items]


async def test_two_renames_to_one_name_leave_one_winner(stores: tuple[Store, Store]) -> None:
    first, second = stores
    org = await first.organizations.ensure()
    for round_ in range(ROUNDS):
        a = (await first.workflows.create(org, named(f"a-{round_}"))).workflow
        b = (await first.workflows.create(org, named(f"b-{round_}"))).workflow
        name = f"taken-{round_}"
        outcomes = await together(
            partial(first.workflows.patch, org, a.id, name=name),
            partial(second.workflows.patch, org, b.id, name=name),
        )
        winner = one_winner(outcomes, name)
        assert await live_named(first, org, name) == [winner]
        loser = b.id if winner == a.id else a.id
        kept = await first.workflows.get(org, loser)
        assert kept is not None and kept.name in (f"a-{round_}", f"b-{round_}")


async def test_two_creates_of_one_name_leave_one_winner(stores: tuple[Store, Store]) -> None:
    first, second = stores
    org = await first.organizations.ensure()
    for round_ in range(ROUNDS):
        name = f"new-{round_}"
        outcomes = await together(
            partial(first.workflows.create, org, named(name)),
            partial(second.workflows.create, org, named(name)),
        )
        winner = one_winner(outcomes, name)
        assert await live_named(first, org, name) == [winner]


async def test_a_duplicate_and_a_definition_rename_race_for_one_name(
    stores: tuple[Store, Store],
) -> None:
    # Two other paths that set a name: a copy's chosen name, and PUT's definition name.
    first, second = stores
    org = await first.organizations.ensure()
    for round_ in range(ROUNDS):
        original = (await first.workflows.create(org, named(f"orig-{round_}"))).workflow
        other = (await first.workflows.create(org, named(f"other-{round_}"))).workflow
        name = f"wanted-{round_}"
        outcomes = await together(
            partial(first.workflows.duplicate, org, original.id, name=name),
            partial(second.workflows.save, org, named(name), workflow_id=other.id),
        )
        winner = one_winner(outcomes, name)
        assert await live_named(first, org, name) == [winner]


async def test_two_saves_by_one_new_name_make_one_workflow_of_two_versions(
    stores: tuple[Store, Store],
) -> None:
    # save_workflow by name is "create or update": the loser of the create updates instead.
    first, second = stores
    org = await first.organizations.ensure()
    for round_ in range(ROUNDS):
        name = f"pushed-{round_}"
        one, two = {**named(name), "description": "one"}, {**named(name), "description": "two"}
        outcomes = await together(
            partial(first.workflows.save, org, one), partial(second.workflows.save, org, two)
        )
        assert all(isinstance(o, SavedWorkflow) for o in outcomes), outcomes
        ids = {o.workflow.id for o in outcomes}
        assert len(ids) == 1 and await live_named(first, org, name) == list(ids)
        assert sorted(o.version.version for o in outcomes) == [1, 2]


async def test_names_race_within_a_workspace_not_across(stores: tuple[Store, Store]) -> None:
    first, second = stores
    org = await first.organizations.ensure()
    workspace, elsewhere = uuid4(), uuid4()
    outcomes = await together(
        lambda: first.workflows.create(org, named("shared"), workspace_id=workspace),
        lambda: second.workflows.create(org, named("shared"), workspace_id=workspace),
    )
    one_winner(outcomes, "shared")
    # The same name in another workspace, or with no workspace, is another scope.
    outcomes = await together(
        lambda: first.workflows.create(org, named("shared"), workspace_id=elsewhere),
        lambda: second.workflows.create(org, named("shared")),
    )
    assert all(isinstance(o, SavedWorkflow) for o in outcomes), outcomes
