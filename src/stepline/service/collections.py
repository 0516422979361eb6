"""An organization's knowledge collections: create, list, read, delete; add and remove their
sources (a text with a label, or a file of the organization); search them.

The verbs call the `KnowledgeLibrary` of the context (its errors are already stepline's
kinds: another organization's collection is NotFound, a name in use a Conflict). A
collection created with embeddings ({provider, model}) has its chunks embedded when added
and its searches ranked hybrid: the embedder is made from the server's provider
configuration and the organization's secret holding the provider's key, as the
`knowledge_retrieval` kind makes it (`stepline.retrieval.providers`). The collection
keeps the provider and the model: adds and searches embed with them (naming another
provider is a 422, since its vectors would not compare). A collection made before the
provider was kept has only its model: an add or a search names the provider, or the
server's only one is used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from stepline.errors import Detail, InvalidRequest, TooLarge, Unavailable
from stepline.providers.config import ProviderCatalog, configured_providers
from stepline.retrieval.access import KnowledgeHit, KnowledgeResults
from stepline.retrieval.embeddings import Embedder
from stepline.retrieval.library import MAX_SOURCE_CHARS, KnowledgeLibrary, embedder_name
from stepline.retrieval.providers import (
    EmbeddingsUnavailable,
    embeddings_provider,
    provider_embedder,
)
from stepline.service.context import Caller, ServiceContext
from stepline.store.collections import CollectionRecord, SourceRecord
from stepline.store.paging import MAX_PAGE_SIZE, Page

MAX_TOP_K = 50
"""The most chunks one search returns (as the `knowledge_retrieval` kind)."""
MAX_QUERY_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Which provider embeds a collection's chunks, with which model."""

    provider: str
    model: str


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", details=[Detail(field, message)])


def _library(ctx: ServiceContext) -> KnowledgeLibrary:
    if ctx.knowledge is None:
        raise Unavailable("this server has no knowledge collections")
    return ctx.knowledge


def _providers(ctx: ServiceContext) -> ProviderCatalog:
    kind = ctx.kinds.get("knowledge_retrieval")
    providers = getattr(kind, "providers", None)
    if callable(providers):
        catalog = providers()
        if isinstance(catalog, ProviderCatalog):
            return catalog
    return configured_providers()


async def _embedder(
    ctx: ServiceContext, caller: Caller, embeddings: Embeddings, field: str = "embeddings.provider"
) -> Embedder:
    try:
        settings = embeddings_provider(_providers(ctx), embeddings.provider)
    except EmbeddingsUnavailable as exc:
        exc.details = [Detail(field, exc.message)]
        raise
    secrets: dict[str, str] = {}
    if settings.api_key_secret is not None and ctx.secrets is not None:
        secrets = await ctx.secrets.values(
            caller.organization_id, caller.workspace_id, [settings.api_key_secret]
        )
    return provider_embedder(settings, embeddings.model, secrets, whose="this organization")


async def _library_for(
    ctx: ServiceContext, caller: Caller, found: CollectionRecord, provider: str | None
) -> KnowledgeLibrary:
    """The library, with an embedder of the collection's model when it has one."""
    library = _library(ctx)
    if found.embedding_model is None:
        return library
    if provider is None:
        provider = found.embedding_provider
    elif found.embedding_provider is not None and provider != found.embedding_provider:
        theirs = embedder_name(found.embedding_provider, found.embedding_model)
        raise _invalid(
            "provider",
            f"collection {found.name!r} is embedded with {theirs}; provider {provider!r} "
            "cannot search it or add to it (its vectors would not compare)",
        )
    if provider is None:
        names = list(_providers(ctx))
        if len(names) != 1:
            raise _invalid(
                "provider",
                f"collection {found.name!r} is embedded with {found.embedding_model!r}: "
                "name the provider that embeds with it",
            )
        provider = names[0]
    embedder = await _embedder(ctx, caller, Embeddings(provider, found.embedding_model), "provider")
    return replace(library, embedder=embedder)


async def create_collection(
    ctx: ServiceContext,
    caller: Caller,
    name: str,
    description: str = "",
    *,
    embeddings: Embeddings | None = None,
) -> CollectionRecord:
    """A new collection (Conflict when the organization has one of that name)."""
    library = _library(ctx)
    model = None
    if embeddings is not None:
        library = replace(library, embedder=await _embedder(ctx, caller, embeddings))
        model = embeddings.model
    try:
        return await library.create(
            caller.organization_id, name, description, embedding_model=model
        )
    except InvalidRequest as exc:
        if exc.details or "name" not in exc.message:
            raise
        raise _invalid("name", exc.message) from None


async def list_collections(
    ctx: ServiceContext,
    caller: Caller,
    *,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Page[CollectionRecord]:
    """The organization's collections, newest first."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise _invalid("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    if after is not None and before is not None:
        raise _invalid("before", "give at most one of after and before")
    return await _library(ctx).list_collections(
        caller.organization_id, limit=limit, after=after, before=before
    )


async def get_collection(
    ctx: ServiceContext, caller: Caller, collection: str | UUID
) -> CollectionRecord:
    """The collection of that id (or, for a string that is none, that name)."""
    return await _library(ctx).get(caller.organization_id, collection)


async def delete_collection(ctx: ServiceContext, caller: Caller, collection: str | UUID) -> None:
    found = await get_collection(ctx, caller, collection)
    await _library(ctx).delete(caller.organization_id, found.id)


async def add_text(
    ctx: ServiceContext,
    caller: Caller,
    collection: str | UUID,
    text: str,
    *,
    source: str,
    provider: str | None = None,
) -> SourceRecord:
    """Add a text (chunked) as one source labelled `source`."""
    if len(text) > MAX_SOURCE_CHARS:
        raise TooLarge(
            f"text: a source can hold at most {MAX_SOURCE_CHARS} characters; split it",
            details=[Detail("text", f"at most {MAX_SOURCE_CHARS} characters")],
        )
    if not source.strip():
        raise _invalid("source", "a text's source needs a label")
    found = await get_collection(ctx, caller, collection)
    library = await _library_for(ctx, caller, found, provider)
    return await library.add_text(caller.organization_id, found.id, text, source=source)


async def add_file(
    ctx: ServiceContext,
    caller: Caller,
    collection: str | UUID,
    file_id: UUID,
    *,
    source: str | None = None,
    provider: str | None = None,
) -> SourceRecord:
    """Add a file of the organization (parsed to text, chunked by page) as one source."""
    found = await get_collection(ctx, caller, collection)
    library = await _library_for(ctx, caller, found, provider)
    return await library.add_file(caller.organization_id, found.id, file_id, source=source)


async def list_sources(
    ctx: ServiceContext, caller: Caller, collection: str | UUID
) -> list[SourceRecord]:
    found = await get_collection(ctx, caller, collection)
    return await _library(ctx).list_sources(caller.organization_id, found.id)


async def remove_source(
    ctx: ServiceContext, caller: Caller, collection: str | UUID, source_id: UUID
) -> None:
    found = await get_collection(ctx, caller, collection)
    await _library(ctx).remove_source(caller.organization_id, found.id, source_id)


async def search(
    ctx: ServiceContext,
    caller: Caller,
    collection: str | UUID,
    query: str,
    *,
    top_k: int = 5,
    min_score: float | None = None,
    provider: str | None = None,
) -> KnowledgeResults:
    """The collection's best chunks for `query`, best first (hybrid when it is embedded)."""
    if not 1 <= top_k <= MAX_TOP_K:
        raise _invalid("top_k", f"must be between 1 and {MAX_TOP_K}")
    if len(query) > MAX_QUERY_CHARS:
        raise _invalid("query", f"at most {MAX_QUERY_CHARS} characters")
    found = await get_collection(ctx, caller, collection)
    library = await _library_for(ctx, caller, found, provider)
    results = await library.search(caller.organization_id, found.id, query, top_k)
    hits: list[KnowledgeHit] = [
        hit for hit in results.hits if min_score is None or hit.score >= min_score
    ]
    return replace(results, hits=hits)


def search_output(query: str, found: KnowledgeResults) -> dict[str, Any]:
    """A search's answer as the edges show it (JSON), as the kind's step outputs it."""
    return {
        "collection_id": str(found.collection_id),
        "collection": found.collection_name,
        "query": query,
        "ranking": found.ranking,
        "count": len(found.hits),
        "results": [hit.output() for hit in found.hits],
    }
