"""How a node kind sees knowledge collections: one organization's, through a small interface.

Node kinds never import the store: the engine hands them a `KnowledgeAccess` in their
`NodeContext`, bound to the run's organization (another organization's collection is
not found, as anywhere else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from stepline.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from stepline.retrieval.embeddings import Embedder


class CollectionNotFound(NotFound):
    """No live collection of that id or name in the organization."""


class EmbeddingsMismatch(InvalidRequest):
    """A search or an add would embed with another provider or model than the collection's
    chunks were embedded with: vectors of different embedders do not compare."""


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """A chunk a search found: its text, its score (higher first) and where it is from."""

    chunk_id: UUID
    text: str
    score: float
    source_id: UUID
    source: str
    file_id: UUID | None
    position: int
    page: int | None
    char_start: int
    char_end: int

    def output(self) -> dict[str, Any]:
        """The hit as a step outputs it (JSON)."""
        return {
            "text": self.text,
            "score": self.score,
            "file_id": None if self.file_id is None else str(self.file_id),
            "source": self.source,
            "source_id": str(self.source_id),
            "position": self.position,
            "page": self.page,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "chunk_id": str(self.chunk_id),
        }


@dataclass(frozen=True, slots=True)
class KnowledgeResults:
    """A search's answer: the collection searched and its best chunks, best first."""

    collection_id: UUID
    collection_name: str
    hits: list[KnowledgeHit]
    ranking: str = "bm25"
    """`bm25`, or `hybrid` (BM25 fused with embeddings' cosine similarity; scores are then
    reciprocal-rank-fusion scores)."""


class KnowledgeAccess(Protocol):
    """One organization's collections, for the steps of its runs."""

    async def search(
        self, collection: str, query: str, top_k: int, *, embedder: Embedder | None = None
    ) -> KnowledgeResults:
        """The collection's (by id, or else name) `top_k` best chunks for `query`, hybrid
        when `embedder` has the collection's embedding model; CollectionNotFound if the
        organization has no such collection."""
        ...
