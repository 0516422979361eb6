"""Hybrid ranking: BM25 fused with embeddings from an OpenAI-compatible `/v1/embeddings`
(the loopback stand-in), on SQLite and PostgreSQL; and its pieces."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from stepline.errors import InvalidRequest, Unavailable
from stepline.providers.client import Endpoint
from stepline.providers.errors import ProviderError
from stepline.retrieval.access import EmbeddingsMismatch
from stepline.retrieval.embeddings import (
    OpenAIEmbedder,
    cosine,
    decode_vector,
    encode_vector,
    most_similar,
    reciprocal_rank_fusion,
)
from stepline.retrieval.library import KnowledgeLibrary
from stepline.store import Store
from support.openai_server import EMBEDDINGS, StandIn, openai_stand_in, server_error

GARAGE = [
    "Automobile repair: the mechanic replaced worn brake pads and rotors.",
    "Bread rises because yeast ferments sugars and releases carbon dioxide.",
    "Glaciers carve U-shaped valleys as they slowly flow downhill.",
    "The automobile museum shows vintage engines from the 1920s.",
]


MODEL = "stand-in-embed"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    with openai_stand_in(api_key="sk-test") as server:
        server.synonyms.update({"car": "automobile", "fix": "repair", "fixing": "repair"})
        yield server


def embedder(server: StandIn) -> OpenAIEmbedder:
    endpoint = Endpoint(base_url=server.base_url, api_key="sk-test", provider="local")
    return OpenAIEmbedder(endpoint, MODEL, timeout_s=10)


def test_reciprocal_rank_fusion_favours_items_high_in_either_ranking() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_vectors_round_trip_as_float32_bytes_and_compare_by_cosine() -> None:
    vector = [0.5, -0.25, 1.0]
    assert decode_vector(encode_vector(vector)) == vector
    assert cosine(vector, vector) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert cosine([1.0], [1.0, 2.0]) == 0.0
    near, far = uuid4(), uuid4()
    stored = [(far, encode_vector([0.0, 1.0])), (near, encode_vector([1.0, 0.1]))]
    assert most_similar([1.0, 0.0], stored, 5) == [near]


async def test_the_embedder_gets_one_vector_per_text_in_batches(stand_in: StandIn) -> None:
    texts = [f"text number {n}" for n in range(70)]
    vectors = await embedder(stand_in).embed(texts)
    assert len(vectors) == 70
    assert vectors[3] == pytest.approx(stand_in.embedding(texts[3]), abs=1e-6)
    requests = [r for r in stand_in.received if r.path == EMBEDDINGS]
    assert [len(r.body["input"]) for r in requests] == [64, 6]
    assert requests[0].headers["authorization"] == "Bearer sk-test"


async def test_a_failing_provider_is_a_provider_error(stand_in: StandIn) -> None:
    stand_in.script(server_error())
    with pytest.raises(ProviderError):
        await embedder(stand_in).embed(["x"])


async def test_hybrid_search_finds_what_bm25_alone_misses(store: Store, stand_in: StandIn) -> None:
    org = await store.organizations.ensure()
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    collection = await hybrid.create(org, "garage", embedding_model=MODEL)
    for n, text in enumerate(GARAGE):
        await hybrid.add_text(org, collection.id, text, source=f"note {n}")

    lexical = await KnowledgeLibrary(store).search(org, "garage", "car fix")
    assert lexical.hits == [] and lexical.ranking == "bm25"

    found = await hybrid.search(org, "garage", "car fix", top_k=2)
    assert found.ranking == "hybrid"
    assert found.hits[0].text == GARAGE[0]
    assert found.hits[0].score > 0
    assert [h.score for h in found.hits] == sorted((h.score for h in found.hits), reverse=True)

    # Where both rankings agree, the fused first is BM25's first too.
    both = await hybrid.search(org, "garage", "yeast ferments bread", top_k=3)
    assert both.hits[0].text == GARAGE[1]


async def test_hybrid_search_stays_within_the_organization(store: Store, stand_in: StandIn) -> None:
    org = await store.organizations.ensure()
    other = await store.organizations.ensure("other")
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    ours = await hybrid.create(org, "garage", embedding_model=MODEL)
    theirs = await hybrid.create(other, "garage", embedding_model=MODEL)
    await hybrid.add_text(org, ours.id, GARAGE[3], source="ours")
    await hybrid.add_text(other, theirs.id, GARAGE[0], source="theirs")
    found = await hybrid.search(org, "garage", "car fix automobile repair", top_k=5)
    assert [h.source for h in found.hits] == ["ours"]


async def test_a_failing_embeddings_provider_is_unavailable(
    store: Store, stand_in: StandIn
) -> None:
    org = await store.organizations.ensure()
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    collection = await hybrid.create(org, "garage", embedding_model=MODEL)
    stand_in.script(server_error())
    with pytest.raises(Unavailable):
        await hybrid.add_text(org, collection.id, GARAGE[0], source="x")
    assert await hybrid.list_sources(org, collection.id) == []


async def test_a_collection_keeps_its_provider_and_searches_only_with_it(
    store: Store, stand_in: StandIn
) -> None:
    org = await store.organizations.ensure()
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    collection = await hybrid.create(org, "garage", embedding_model=MODEL)
    assert (collection.embedding_provider, collection.embedding_model) == ("local", MODEL)
    found = await store.collections.find(org, "garage")
    assert found is not None and found.embedding_provider == "local"
    await hybrid.add_text(org, collection.id, GARAGE[0], source="x")

    # The same model name at another provider: its vectors would not compare.
    elsewhere = OpenAIEmbedder(
        Endpoint(base_url=stand_in.base_url, api_key="sk-test", provider="elsewhere"), MODEL
    )
    with pytest.raises(EmbeddingsMismatch, match=r"'local'.*'elsewhere'"):
        await hybrid.search(org, "garage", "car fix", embedder=elsewhere)
    with pytest.raises(EmbeddingsMismatch, match="elsewhere"):
        await KnowledgeLibrary(store, embedder=elsewhere).add_text(
            org, collection.id, GARAGE[1], source="y"
        )
    # Nothing was embedded for either: the refusal comes before any request.
    assert len([r for r in stand_in.received if r.path == EMBEDDINGS]) == 1
    assert (await hybrid.search(org, "garage", "car fix")).ranking == "hybrid"


async def test_vectors_of_another_model_are_never_compared(store: Store, stand_in: StandIn) -> None:
    org = await store.organizations.ensure()
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    collection = await hybrid.create(org, "garage", embedding_model=MODEL)
    await hybrid.add_text(org, collection.id, GARAGE[0], source="x")
    other_model = embedder(stand_in)
    other_model.model = "another-model"
    with pytest.raises(EmbeddingsMismatch, match=rf"'{MODEL}'.*'another-model'"):
        await hybrid.search(org, "garage", "car fix", embedder=other_model)
    with pytest.raises(InvalidRequest, match="another-model"):
        await hybrid.create(org, "other", embedding_model="another-model")
    with pytest.raises(InvalidRequest, match=MODEL):
        await KnowledgeLibrary(store).add_text(org, collection.id, GARAGE[1], source="y")


async def test_a_collection_without_an_embedding_model_stays_bm25(
    store: Store, stand_in: StandIn
) -> None:
    org = await store.organizations.ensure()
    hybrid = KnowledgeLibrary(store, embedder=embedder(stand_in))
    collection = await hybrid.create(org, "plain")
    await hybrid.add_text(org, collection.id, GARAGE[0], source="x")
    assert [r for r in stand_in.received if r.path == EMBEDDINGS] == []
    found = await hybrid.search(org, "plain", "automobile")
    assert found.ranking == "bm25" and len(found.hits) == 1
