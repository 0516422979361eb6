"""An organization's knowledge collections, whole: the store's records and search, the
chunker, and the files a source may be read from.

A file added to a collection is parsed to text as the `parse` kind parses it (PDF, HTML,
plain text, Markdown, JSON, CSV), chunked page by page where it has pages, and stored as
one source. A collection created with an `embedding_model` has each chunk embedded when
added (by the library's embedder, which must be of that model), and its searches given an
embedder of that model fuse BM25's ranking with the embeddings' (reciprocal rank fusion);
vectors of different models are never compared.

The store's errors become stepline's kinds here: a collection or source the organization
does not have is NotFound, a name in use a Conflict, an unusable name or file an
InvalidRequest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

from stepline.errors import Conflict, InvalidRequest, NotFound, Unavailable
from stepline.files.access import FileInfo
from stepline.files.library import FileLibrary, info_of
from stepline.nodes.base import NodeError
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_text import ParsedDocument, parse_document
from stepline.providers.errors import ProviderError
from stepline.retrieval.access import (
    CollectionNotFound,
    EmbeddingsMismatch,
    KnowledgeHit,
    KnowledgeResults,
)
from stepline.retrieval.chunking import Chunk, ChunkingOptions, chunk_pages, chunk_text
from stepline.retrieval.embeddings import (
    Embedder,
    encode_vector,
    most_similar,
    reciprocal_rank_fusion,
)
from stepline.store import Store
from stepline.store.collections import (
    MAX_RESULTS,
    CollectionNameTakenError,
    CollectionNotFoundError,
    CollectionRecord,
    SearchHit,
    SourceNotFoundError,
    SourceRecord,
)
from stepline.store.errors import NotFoundError
from stepline.store.paging import Page

MAX_SOURCE_CHARS = 5_000_000
PARSE_TIMEOUT_S = 60.0
"""`KnowledgeLibrary.parse_timeout_s` by default."""
"""The most characters of text one source adds (a longer one is refused, not cut)."""
MAX_SOURCE_LABEL_CHARS = 500
HYBRID_CANDIDATES = 50
"""Chunks each ranking contributes to a hybrid search (at least top_k)."""


class SourceNotFound(NotFound):
    """No source of that id in the collection."""


class FilesUnavailable(InvalidRequest):
    """A file was to be added, but there is no file storage."""


@dataclass
class KnowledgeLibrary:
    """Collections of every organization over one store (and, to add files, a file library)."""

    store: Store
    files: FileLibrary | None = None
    embedder: Embedder | None = None
    """Embeds the chunks added to collections of its model, and their searches' queries."""
    parse_timeout_s: float = PARSE_TIMEOUT_S
    """How long a file added as a source may take to read as text (a crafted PDF can take
    minutes): past it the reading child process is killed and the add refused."""

    async def create(
        self,
        organization_id: UUID,
        name: str,
        description: str = "",
        *,
        embedding_model: str | None = None,
    ) -> CollectionRecord:
        """A new collection; with `embedding_model`, its chunks are embedded for hybrid
        ranking by the library's embedder (which must be of that model), whose provider the
        collection records."""
        provider = None
        if embedding_model is not None:
            if self.embedder is None or self.embedder.model != embedding_model:
                raise InvalidRequest(
                    f"collection {name!r} is to embed its chunks with {embedding_model!r}, "
                    "and no embedder of that model is configured"
                )
            provider = self.embedder.provider
        try:
            return await self.store.collections.create(
                organization_id,
                name,
                description,
                embedding_model=embedding_model,
                embedding_provider=provider,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        except CollectionNameTakenError as exc:
            raise Conflict(str(exc)) from None
        except NotFoundError as exc:
            raise NotFound(str(exc)) from None

    async def get(self, organization_id: UUID, collection: str | UUID) -> CollectionRecord:
        """The collection of that id (or, for a string that is none, that name)."""
        found = await self.store.collections.find(organization_id, str(collection))
        if found is None:
            raise CollectionNotFound(f"collection {str(collection)!r} not found")
        return found

    async def list_collections(
        self,
        organization_id: UUID,
        *,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[CollectionRecord]:
        return await self.store.collections.page(
            organization_id, limit=limit, after=after, before=before
        )

    async def delete(self, organization_id: UUID, collection_id: UUID) -> None:
        try:
            await self.store.collections.delete(organization_id, collection_id)
        except CollectionNotFoundError as exc:
            raise CollectionNotFound(str(exc)) from None

    async def add_text(
        self,
        organization_id: UUID,
        collection_id: UUID,
        text: str,
        *,
        source: str,
        options: ChunkingOptions | None = None,
    ) -> SourceRecord:
        """Add a text as one source, chunked."""
        _check_size(len(text))
        chunks = await asyncio.to_thread(chunk_text, text, options)
        return await self._add(organization_id, collection_id, chunks, _label(source), None)

    async def add_file(
        self,
        organization_id: UUID,
        collection_id: UUID,
        file_id: UUID,
        *,
        source: str | None = None,
        options: ChunkingOptions | None = None,
    ) -> SourceRecord:
        """Add an organization's file as one source: parsed to text, chunked by page
        where it has pages; `source` defaults to the file's name."""
        if self.files is None:
            raise FilesUnavailable("files cannot be added: this server has no file storage")
        await self.get(organization_id, collection_id)  # not found before the file is read
        record, data = await self.files.read(organization_id, file_id)
        parsed = await self._parse(info_of(record), data)
        chunks = await asyncio.to_thread(_chunks_of, parsed, options)
        label = _label(source if source is not None else record.filename)
        return await self._add(organization_id, collection_id, chunks, label, record.id)

    async def _parse(self, info: FileInfo, data: bytes) -> ParsedDocument:
        """The file as text, read in a child process the timeout kills (pypdf in a thread
        could not be stopped and would burn a core for as long as the document took)."""
        try:
            async with asyncio.timeout(self.parse_timeout_s):
                return await run_in_child(parse_document, info, data, MAX_SOURCE_CHARS + 1)
        except NodeError as exc:
            raise InvalidRequest(exc.message) from None
        except TimeoutError:
            raise InvalidRequest(
                f"file {info.filename!r} took longer than {self.parse_timeout_s:g} s to read "
                "as text; it cannot be added"
            ) from None

    async def list_sources(self, organization_id: UUID, collection_id: UUID) -> list[SourceRecord]:
        try:
            return await self.store.collections.sources(organization_id, collection_id)
        except CollectionNotFoundError as exc:
            raise CollectionNotFound(str(exc)) from None

    async def remove_source(
        self, organization_id: UUID, collection_id: UUID, source_id: UUID
    ) -> None:
        try:
            await self.store.collections.remove_source(organization_id, collection_id, source_id)
        except CollectionNotFoundError as exc:
            raise CollectionNotFound(str(exc)) from None
        except SourceNotFoundError as exc:
            raise SourceNotFound(str(exc)) from None

    async def search(
        self,
        organization_id: UUID,
        collection: str | UUID,
        query: str,
        top_k: int = 5,
        *,
        embedder: Embedder | None = None,
    ) -> KnowledgeResults:
        """The collection's `top_k` (at most MAX_RESULTS) best chunks for `query`: hybrid
        when the collection is embedded and an embedder is given (else the library's);
        EmbeddingsMismatch if that embedder is not the collection's provider and model."""
        found = await self.get(organization_id, collection)
        top_k = max(1, min(top_k, MAX_RESULTS))
        embedder = embedder or self.embedder
        if found.embedding_model is None:
            embedder = None  # nothing to compare the query's vector with: BM25 alone
        elif embedder is not None:
            check_embedder(found, embedder)
        candidates = top_k if embedder is None else max(top_k, HYBRID_CANDIDATES)
        try:
            hits = await self.store.collections.search(
                organization_id, found.id, query, limit=min(candidates, MAX_RESULTS)
            )
        except CollectionNotFoundError as exc:  # deleted meanwhile
            raise CollectionNotFound(str(exc)) from None
        if embedder is not None and query.strip():
            vectors = await self.store.collections.chunk_vectors(organization_id, found.id)
            if vectors:
                [query_vector] = await _embed(embedder, [query])
                fused = await self._fuse(
                    organization_id, found.id, query_vector, hits, vectors, top_k
                )
                return KnowledgeResults(found.id, found.name, fused, "hybrid")
        return KnowledgeResults(found.id, found.name, [_hit(hit) for hit in hits[:top_k]])

    async def _fuse(
        self,
        organization_id: UUID,
        collection_id: UUID,
        query_vector: list[float],
        hits: list[SearchHit],
        vectors: list[tuple[UUID, bytes]],
        top_k: int,
    ) -> list[KnowledgeHit]:
        similar = most_similar(query_vector, vectors, max(top_k, HYBRID_CANDIDATES))
        fused = reciprocal_rank_fusion([[hit.chunk_id for hit in hits], similar])[:top_k]
        by_id = {hit.chunk_id: hit for hit in hits}
        missing = [chunk_id for chunk_id, _ in fused if chunk_id not in by_id]
        for hit in await self.store.collections.chunks_by_id(
            organization_id, collection_id, missing
        ):
            by_id[hit.chunk_id] = hit
        return [
            _hit(by_id[chunk_id].model_copy(update={"score": score}))
            for chunk_id, score in fused
            if chunk_id in by_id  # a chunk removed meanwhile is left out
        ]

    def _embedder_of(self, found: CollectionRecord) -> Embedder:
        if self.embedder is None:
            raise InvalidRequest(
                f"collection {found.name!r} embeds its chunks with {found.embedding_model!r}, "
                "and no embedder of that model is configured"
            )
        return check_embedder(found, self.embedder)

    def for_organization(self, organization_id: UUID) -> OrganizationKnowledge:
        return OrganizationKnowledge(self, organization_id)

    async def _add(
        self,
        organization_id: UUID,
        collection_id: UUID,
        chunks: list[Chunk],
        source: str,
        file_id: UUID | None,
    ) -> SourceRecord:
        embeddings = None
        found = await self.get(organization_id, collection_id)
        if found.embedding_model is not None and chunks:
            embedder = self._embedder_of(found)
            vectors = await _embed(embedder, [chunk.text for chunk in chunks])
            embeddings = [encode_vector(vector) for vector in vectors]
        try:
            return await self.store.collections.add_chunks(
                organization_id,
                collection_id,
                chunks,
                source=source,
                file_id=file_id,
                embeddings=embeddings,
            )
        except CollectionNotFoundError as exc:
            raise CollectionNotFound(str(exc)) from None


@dataclass
class OrganizationKnowledge:
    """One organization's collections, as node kinds see them (`KnowledgeAccess`)."""

    library: KnowledgeLibrary
    organization_id: UUID

    async def search(
        self, collection: str, query: str, top_k: int, *, embedder: Embedder | None = None
    ) -> KnowledgeResults:
        return await self.library.search(
            self.organization_id, collection, query, top_k, embedder=embedder
        )


def embedder_name(provider: str | None, model: str | None) -> str:
    return f"model {model!r}" + (f" of provider {provider!r}" if provider is not None else "")


def check_embedder(found: CollectionRecord, embedder: Embedder) -> Embedder:
    """`embedder` if it is the collection's model (and provider, where one was recorded),
    else EmbeddingsMismatch naming both."""
    same_model = embedder.model == found.embedding_model
    same_provider = found.embedding_provider is None or (
        embedder.provider == found.embedding_provider
    )
    if not (same_model and same_provider):
        theirs = embedder_name(found.embedding_provider, found.embedding_model)
        given = embedder_name(embedder.provider, embedder.model)
        raise EmbeddingsMismatch(
            f"collection {found.name!r} is embedded with {theirs}; a search or an add "
            f"embedding with {given} cannot use its vectors: use the collection's"
        )
    return embedder


async def _embed(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    try:
        return await embedder.embed(texts)
    except ProviderError as exc:
        raise Unavailable(f"the embeddings could not be made: {exc.message}") from exc


def _chunks_of(parsed: ParsedDocument, options: ChunkingOptions | None) -> list[Chunk]:
    _check_size(len(parsed.text))
    if len(parsed.pages) > 1:
        return chunk_pages(parsed.pages, options)
    return chunk_text(parsed.text, options)


def _check_size(chars: int) -> None:
    if chars > MAX_SOURCE_CHARS:
        raise InvalidRequest(
            f"a source can hold at most {MAX_SOURCE_CHARS} characters of text; split it"
        )


def _label(source: str) -> str:
    label = source.strip()
    if not label or len(label) > MAX_SOURCE_LABEL_CHARS:
        raise InvalidRequest(f"a source label must have 1 to {MAX_SOURCE_LABEL_CHARS} characters")
    return label


def _hit(hit: SearchHit) -> KnowledgeHit:
    return KnowledgeHit(
        chunk_id=hit.chunk_id,
        text=hit.text,
        score=hit.score,
        source_id=hit.source_id,
        source=hit.source,
        file_id=hit.file_id,
        position=hit.position,
        page=hit.page,
        char_start=hit.char_start,
        char_end=hit.char_end,
    )
