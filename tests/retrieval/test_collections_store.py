"""Collections in the store: their verbs, search ranking, hostile queries and tenancy,
on SQLite (FTS5, bm25) and PostgreSQL (tsvector, BM25 in SQL)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from stepline.retrieval.chunking import chunk_text
from stepline.store import Store
from stepline.store.collections import (
    CollectionNameTakenError,
    CollectionNotFoundError,
    SourceNotFoundError,
    query_terms,
)
from stepline.store.errors import NotFoundError
from support.knowledge import CORPUS, CORPUS_CHUNKING, QUERIES


async def _corpus(store: Store, org: UUID) -> UUID:
    collection = await store.collections.create(org, "encyclopedia", "ten topics")
    for name, text in CORPUS.items():
        await store.collections.add_chunks(
            org, collection.id, chunk_text(text, CORPUS_CHUNKING), source=name
        )
    return collection.id


async def test_collections_are_created_found_listed_and_deleted(store: Store) -> None:
    org = await store.organizations.ensure()
    first = await store.collections.create(org, "manuals", "product manuals")
    second = await store.collections.create(org, "  policies ")
    assert second.name == "policies"
    assert await store.collections.get(org, first.id) == first
    assert await store.collections.find(org, "manuals") == first
    assert await store.collections.find(org, str(second.id)) == second
    assert await store.collections.find(org, "nothing") is None
    page = await store.collections.page(org, limit=1)
    assert [c.id for c in page.items] == [second.id]
    assert page.next_cursor is not None
    rest = await store.collections.page(org, limit=1, after=page.next_cursor)
    assert [c.id for c in rest.items] == [first.id]

    await store.collections.delete(org, first.id)
    assert await store.collections.get(org, first.id) is None
    with pytest.raises(CollectionNotFoundError):
        await store.collections.delete(org, first.id)
    again = await store.collections.create(org, "manuals")
    assert again.id != first.id


async def test_a_live_collection_name_is_taken_once_per_organization(store: Store) -> None:
    org = await store.organizations.ensure()
    other = await store.organizations.ensure("other")
    await store.collections.create(org, "docs")
    with pytest.raises(CollectionNameTakenError):
        await store.collections.create(org, "docs")
    await store.collections.create(other, "docs")
    with pytest.raises(ValueError):
        await store.collections.create(org, "   ")


async def test_a_collection_in_an_unknown_organization_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.collections.create(uuid4(), "docs")


async def test_every_query_ranks_its_expected_chunk_first(store: Store) -> None:
    org = await store.organizations.ensure()
    collection = await _corpus(store, org)
    misses = []
    for query, phrase in QUERIES:
        hits = await store.collections.search(org, collection, query, limit=3)
        if not hits or phrase not in hits[0].text:
            misses.append((query, phrase, [h.text[:50] for h in hits]))
        else:
            assert hits == sorted(hits, key=lambda h: -h.score)
    assert misses == []


async def test_hits_say_where_their_chunk_came_from(store: Store) -> None:
    org = await store.organizations.ensure()
    collection = await _corpus(store, org)
    [hit] = await store.collections.search(org, collection, "Pont du Gard limestone", limit=1)
    text = CORPUS["aqueducts.md"]
    assert hit.source == "aqueducts.md"
    assert hit.collection_id == collection
    [expected] = [c for c in chunk_text(text, CORPUS_CHUNKING) if "Pont du Gard" in c.text]
    assert (hit.position, hit.char_start, hit.char_end) == (
        expected.position,
        expected.char_start,
        expected.char_end,
    )
    assert text[hit.char_start : hit.char_end] == hit.text
    assert hit.file_id is None and hit.page is None
    assert hit.score > 0


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "*",
        "NEAR(",
        "NEAR(a b",
        "-",
        "-volcano",
        "",
        "   ",
        "AND OR NOT",
        "col:umn ^start",
        "collection_key : x",
        "'; DROP TABLE chunks; --",
        "(((",
        "a & b | !c <-> d",
        "x" * 10_000,
        "volcano " * 2_000,
        "\x00\x01 volcano",
        "日本語 テキスト",
    ],
)
async def test_hostile_queries_never_fail(store: Store, query: str) -> None:
    org = await store.organizations.ensure()
    collection = await _corpus(store, org)
    hits = await store.collections.search(org, collection, query, limit=5)
    assert len(hits) <= 5
    if "volcano" in query:
        assert hits and "volcan" in hits[0].text.lower()


def test_query_terms_are_plain_words_bounded_in_number() -> None:
    assert query_terms('NEAR("x" b*) -c') == ["near", "x", "b", "c"]
    assert query_terms("x_y") == ["x", "y"]
    assert query_terms("how do the vaccines work") == ["vaccines", "work"]
    assert query_terms("to be or not to be") == ["to", "be", "or", "not"]
    assert len(query_terms(" ".join(f"w{n}" for n in range(500)))) == 32
    assert query_terms("z" * 1000) == ["z" * 64]


async def test_another_organizations_collection_is_not_found(store: Store) -> None:
    org = await store.organizations.ensure()
    other = await store.organizations.ensure("other")
    collection = await _corpus(store, org)
    theirs = await store.collections.create(other, "theirs")
    await store.collections.add_chunks(other, theirs.id, chunk_text("volcano secrets"), source="x")

    assert await store.collections.get(other, collection) is None
    assert await store.collections.find(other, "encyclopedia") is None
    assert await store.collections.find(other, str(collection)) is None
    for call in (
        store.collections.search(other, collection, "volcano"),
        store.collections.sources(other, collection),
        store.collections.add_chunks(other, collection, chunk_text("intruder"), source="x"),
        store.collections.delete(other, collection),
    ):
        with pytest.raises(CollectionNotFoundError):
            await call
    sources = await store.collections.sources(org, collection)
    with pytest.raises(CollectionNotFoundError):
        await store.collections.remove_source(other, collection, sources[0].source_id)
    # Neither sees the other's chunks in a search of its own collection.
    hits = await store.collections.search(other, theirs.id, "volcano magma crust", limit=10)
    assert [h.text for h in hits] == ["volcano secrets"]
    hits = await store.collections.search(org, collection, "volcano secrets", limit=10)
    assert all(h.collection_id == collection for h in hits)
    assert all(h.text != "volcano secrets" for h in hits)


async def test_removing_a_source_removes_its_chunks_from_results(store: Store) -> None:
    org = await store.organizations.ensure()
    collection = await _corpus(store, org)
    sources = {s.source: s for s in await store.collections.sources(org, collection)}
    assert set(sources) == set(CORPUS)
    expected = len(chunk_text(CORPUS["volcanoes.md"], CORPUS_CHUNKING))
    assert sources["volcanoes.md"].chunk_count == expected == 3
    [hit] = await store.collections.search(org, collection, "pyroclastic", limit=1)
    assert hit.source_id == sources["volcanoes.md"].source_id

    await store.collections.remove_source(org, collection, sources["volcanoes.md"].source_id)
    assert await store.collections.search(org, collection, "pyroclastic") == []
    hits = await store.collections.search(org, collection, "volcano magma lava ash", limit=50)
    assert all(h.source != "volcanoes.md" for h in hits)
    assert {s.source for s in await store.collections.sources(org, collection)} == set(CORPUS) - {
        "volcanoes.md"
    }
    with pytest.raises(SourceNotFoundError):
        await store.collections.remove_source(org, collection, sources["volcanoes.md"].source_id)
    # Adding it again makes it found again.
    await store.collections.add_chunks(
        org, collection, chunk_text(CORPUS["volcanoes.md"], CORPUS_CHUNKING), source="v2"
    )
    [hit] = await store.collections.search(org, collection, "pyroclastic", limit=1)
    assert hit.source == "v2"


async def test_deleting_a_collection_leaves_others_searchable(store: Store) -> None:
    org = await store.organizations.ensure()
    collection = await _corpus(store, org)
    other = await store.collections.create(org, "other")
    await store.collections.add_chunks(org, other.id, chunk_text("pyroclastic notes"), source="n")
    await store.collections.delete(org, collection)
    with pytest.raises(CollectionNotFoundError):
        await store.collections.search(org, collection, "pyroclastic")
    [hit] = await store.collections.search(org, other.id, "pyroclastic")
    assert hit.text == "pyroclastic notes"
