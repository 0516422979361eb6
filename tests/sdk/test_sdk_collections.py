"""Knowledge collections through both faces of the SDK, against a real `stepline serve`."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from stepline import Client
from stepline.sdk import (
    Collection,
    CollectionSource,
    ConflictError,
    NotFoundError,
    SearchResults,
    ValidationError,
)
from support.server import ServeProcess


def test_collection_lifecycle(sdk: Client) -> None:
    created = sdk.collections.create("docs", description="product docs")
    assert isinstance(created, Collection) and created.name == "docs"
    assert sdk.collections.get(created.id) == created
    assert [c.id for c in sdk.collections.list()] == [created.id]

    added = sdk.collections.add_text(
        created.id, "The refund window is 30 days after delivery.", source="refunds.md"
    )
    assert isinstance(added, CollectionSource) and added.chunk_count == 1
    sdk.collections.add_text(created.id, "Shipping takes three to five days.", source="ship.md")
    assert [s.source for s in sdk.collections.sources(created.id)] == ["refunds.md", "ship.md"]

    found = sdk.collections.search(created.id, "refund window", top_k=2)
    assert isinstance(found, SearchResults) and found.ranking == "bm25"
    assert found.results[0].source == "refunds.md" and "30 days" in found.results[0].text
    assert found.results[0].char_end > found.results[0].char_start

    sdk.collections.remove_source(created.id, added.source_id)
    assert [s.source for s in sdk.collections.sources(created.id)] == ["ship.md"]
    sdk.collections.delete(created.id)
    with pytest.raises(NotFoundError):
        sdk.collections.get(created.id)


def test_errors_are_the_kinds(sdk: Client) -> None:
    created = sdk.collections.create("once")
    with pytest.raises(ConflictError):
        sdk.collections.create("once")
    with pytest.raises(ValidationError):
        sdk.collections.search(created.id, "x", top_k=0)
    with pytest.raises(NotFoundError):
        sdk.collections.add_file(created.id, uuid.uuid4())
    with pytest.raises(NotFoundError):
        sdk.collections.search(uuid.uuid4(), "x")


def test_listing_pages(
    connect: Callable[..., Client], api_server: ServeProcess, make_key: Callable[..., str]
) -> None:
    key = make_key(f"sdk-coll-pages-{uuid.uuid4().hex[:8]}")
    with connect(api_server.base_url, key) as client:
        for name in ("a", "b", "c"):
            client.collections.create(name)
        assert [c.name for c in client.collections.list(page_size=2)] == ["c", "b", "a"]
