"""Embeddings for hybrid ranking: an OpenAI-compatible `/v1/embeddings` client, vectors as
bytes, cosine similarity and reciprocal rank fusion.

Hybrid ranking fuses two rankings of a collection's chunks, BM25's and the cosine
similarity of their embeddings to the query's, by reciprocal rank fusion: a chunk scores
the sum over the rankings of 1 / (k + rank), so a chunk near the top of either ranks
high, and scores of different scales never need to be compared.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

from stepline.providers.client import ClientPool, Endpoint
from stepline.providers.errors import ProviderError, classify, malformed

RRF_K = 60
"""The usual constant of reciprocal rank fusion (Cormack et al., 2009)."""
BATCH_SIZE = 64
"""Texts sent in one embeddings request."""

K = TypeVar("K")


class Embedder(Protocol):
    """Turns texts into vectors (one per text, in order)."""

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str | None:
        """The configured provider it calls; None for an endpoint of its own."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """ProviderError when the provider gives no usable answer."""
        ...


@dataclass
class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible endpoint (`POST {base_url}/embeddings`)."""

    endpoint: Endpoint
    model: str
    pool: ClientPool | None = None
    timeout_s: float = 60.0

    @property
    def provider(self) -> str | None:
        return self.endpoint.provider

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            vectors.extend(await self._batch(list(texts[start : start + BATCH_SIZE])))
        return vectors

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        import openai

        pool = self.pool if self.pool is not None else ClientPool(max_clients=0)
        where = self.endpoint.describe()
        try:
            async with pool.lease(self.endpoint) as client:
                raw = await client.embeddings.with_raw_response.create(
                    model=self.model,
                    input=texts,
                    encoding_format="float",
                    timeout=self.timeout_s,
                )
                text = raw.text
        except openai.OpenAIError as exc:
            raise classify(exc, where, self.timeout_s) from exc
        return _vectors(text, where, len(texts))


def _vectors(text: str, where: str, count: int) -> list[list[float]]:
    try:
        answer: Any = json.loads(text)
        data = sorted(answer["data"], key=lambda item: item["index"])
        vectors = [[float(x) for x in item["embedding"]] for item in data]
    except (ValueError, KeyError, TypeError) as exc:
        raise _not_embeddings(where, f"not a list of embeddings ({exc})", text) from None
    if len(vectors) != count or len({len(v) for v in vectors}) > 1:
        raise _not_embeddings(where, f"{len(vectors)} vectors for {count} texts", text)
    return vectors


def _not_embeddings(where: str, problem: str, body: str) -> ProviderError:
    error = malformed(where, problem, body)
    error.message = error.message.replace("a chat completion", "an embeddings answer")
    error.args = (error.message,)
    return error


def encode_vector(vector: Sequence[float]) -> bytes:
    """A vector as stored: little-endian float32s."""
    return struct.pack(f"<{len(vector)}f", *vector)


def decode_vector(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine similarity of two vectors (0 for a zero vector or unequal lengths)."""
    if len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], k: int = RRF_K
) -> list[tuple[K, float]]:
    """Every item of the rankings (each best first) with its fused score, best first."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def most_similar(
    query: Sequence[float], vectors: Sequence[tuple[UUID, bytes]], limit: int
) -> list[UUID]:
    """The ids of the `limit` vectors closest to `query` (cosine), closest first."""
    scored = [(cosine(query, decode_vector(data)), chunk_id) for chunk_id, data in vectors]
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [chunk_id for score, chunk_id in scored[:limit] if score > 0]
