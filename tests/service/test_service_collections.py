"""The collections' verbs on SQLite and PostgreSQL: tenants, names, limits, and an embedded
collection whose embedder is made from the providers and the organization's secret, as the
`knowledge_retrieval` kind makes it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from stepline.errors import Conflict, InvalidRequest, NotFound, TooLarge
from stepline.files.library import FileLibrary
from stepline.files.storage import LocalFileStorage
from stepline.nodes.knowledge_retrieval import KnowledgeRetrievalNode
from stepline.retrieval.library import MAX_SOURCE_CHARS, KnowledgeLibrary
from stepline.retrieval.providers import EmbeddingsUnavailable
from stepline.service import Caller, ServiceContext
from stepline.service import collections as verbs
from support.model_nodes import KEY, KEY_SECRET, catalog, provider
from support.openai_server import openai_stand_in


class Secrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values_set = values

    async def values(
        self, organization_id: UUID, workspace_id: UUID | None, names: Collection[str]
    ) -> dict[str, str]:
        return {n: self.values_set[n] for n in names if n in self.values_set}


@pytest.fixture
def knowledge_ctx(ctx: ServiceContext, tmp_path: Path) -> ServiceContext:
    files = FileLibrary(ctx.store, LocalFileStorage(tmp_path / "files"))
    return replace(ctx, knowledge=KnowledgeLibrary(ctx.store, files))


async def callers(ctx: ServiceContext) -> tuple[Caller, Caller]:
    one = await ctx.store.organizations.ensure(f"one-{uuid4().hex[:6]}")
    two = await ctx.store.organizations.ensure(f"two-{uuid4().hex[:6]}")
    return Caller(one), Caller(two)


async def test_tenants_names_and_limits(knowledge_ctx: ServiceContext) -> None:
    ctx = knowledge_ctx
    mine, theirs = await callers(ctx)
    made = await verbs.create_collection(ctx, mine, "docs")
    with pytest.raises(Conflict):
        await verbs.create_collection(ctx, mine, "docs")
    await verbs.create_collection(ctx, theirs, "docs")  # names are per organization
    with pytest.raises(InvalidRequest) as bad_name:
        await verbs.create_collection(ctx, mine, "   ")
    assert [d.field for d in bad_name.value.details] == ["name"]

    source = await verbs.add_text(ctx, mine, made.id, "Otters hold hands asleep.", source="o")
    for attempt in (
        verbs.get_collection(ctx, theirs, made.id),
        verbs.list_sources(ctx, theirs, made.id),
        verbs.add_text(ctx, theirs, made.id, "x", source="y"),
        verbs.remove_source(ctx, theirs, made.id, source.source_id),
        verbs.search(ctx, theirs, made.id, "otters"),
        verbs.delete_collection(ctx, theirs, made.id),
    ):
        with pytest.raises(NotFound):
            await attempt
    # The other organization's file is not found either.
    saved = await ctx.knowledge.files.save(theirs.organization_id, b"hello", "h.txt")  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await verbs.add_file(ctx, mine, made.id, saved.id)

    with pytest.raises(TooLarge):
        await verbs.add_text(ctx, mine, made.id, "x" * (MAX_SOURCE_CHARS + 1), source="big")
    with pytest.raises(InvalidRequest) as bad_k:
        await verbs.search(ctx, mine, made.id, "otters", top_k=0)
    assert [d.field for d in bad_k.value.details] == ["top_k"]
    found = await verbs.search(ctx, mine, "docs", "do otters hold hands")
    assert [h.source for h in found.hits] == ["o"]

    own = await ctx.knowledge.files.save(mine.organization_id, b"Seals sleep in water.", "s.txt")  # type: ignore[union-attr]
    added = await verbs.add_file(ctx, mine, made.id, own.id)
    assert added.source == "s.txt" and added.file_id == own.id
    hit = (await verbs.search(ctx, mine, made.id, "seals")).hits[0]
    assert hit.file_id == own.id


async def test_an_embedded_collection_ranks_hybrid(knowledge_ctx: ServiceContext) -> None:
    with openai_stand_in(api_key=KEY) as server:
        server.synonyms.update({"car": "automobile", "fix": "repair"})
        kind = KnowledgeRetrievalNode(catalog(provider(server.base_url)))
        mine, _ = await callers(knowledge_ctx)
        ctx = replace(knowledge_ctx, kinds={kind.type: kind}, secrets=Secrets({}))
        embeddings = verbs.Embeddings("local", "embed-1")
        with pytest.raises(EmbeddingsUnavailable, match=KEY_SECRET):
            await verbs.create_collection(ctx, mine, "garage", embeddings=embeddings)
        with pytest.raises(EmbeddingsUnavailable, match="nowhere"):
            await verbs.create_collection(
                ctx, mine, "garage", embeddings=verbs.Embeddings("nowhere", "embed-1")
            )

        ctx = replace(ctx, secrets=Secrets({KEY_SECRET: KEY}))
        made = await verbs.create_collection(ctx, mine, "garage", embeddings=embeddings)
        assert made.embedding_model == "embed-1"
        for text in ("Automobile repair for brakes.", "Bread and yeast.", "Glacier valleys."):
            await verbs.add_text(ctx, mine, made.id, text, source=text)
        found = await verbs.search(ctx, mine, made.id, "car fix", top_k=1)
        assert found.ranking == "hybrid"
        assert [h.text for h in found.hits] == ["Automobile repair for brakes."]
        with pytest.raises(InvalidRequest, match="nowhere"):
            await verbs.search(ctx, mine, made.id, "car", provider="nowhere")
