"""Documents stored before they were bounded still read back, on SQLite and PostgreSQL.

A workflow whose config nested 200 levels was accepted, and from then on its
organization's `GET /v1/workflows` was a 500: the store's JSON reader (pydantic's) stops
at 200 levels. Such a record is read with Python's reader instead; the limits keep any
new one from getting there.
"""

from __future__ import annotations

from typing import Any

from stepline.store import Store


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


async def test_a_definition_nested_past_the_readers_limit_still_lists(store: Store) -> None:
    org = await store.organizations.ensure("legacy")
    config = {"output": nested(200)}
    definition = {"name": "deep", "nodes": [{"id": "a", "type": "reshape", "config": config}]}
    saved = await store.workflows.save(org, definition)  # the store does not judge: the API does

    page = await store.workflows.page(org)
    assert [w.name for w in page.items] == ["deep"]
    definitions = await store.workflows.latest_definitions(org, page.items)
    assert definitions[saved.workflow.id] == definition
    version = await store.workflows.version(saved.workflow.id, 1)
    assert version is not None and version.definition == definition
