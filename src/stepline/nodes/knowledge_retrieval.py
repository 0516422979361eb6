"""The `knowledge_retrieval` node kind: the chunks of a knowledge collection that best
match a query, best first.

The collection is named by id or name (a template, like the query); another
organization's collection, or a deleted one, fails the step as not found. Each result
has the chunk's `text`, its `score` (higher first; comparable within one search), and
where it is from: `source`, `file_id` (for a file), `position` among the source's
chunks, `page`, and its character offsets.

With `embeddings` ({provider, model}: a provider of the server's configuration, whose key
is a secret of the run's organization, and the model a collection was embedded with), the
query is embedded too and the ranking is hybrid: BM25 fused with the embeddings' cosine
similarity (`ranking` says which was used). A collection embedded by another provider or
with another model fails the step (EmbeddingsMismatch: its vectors would not compare); a
collection without embeddings is ranked by BM25 alone.

Records `input-json-0` (what was searched) and `output-json-0` (the output), as Retab's
steps show them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.errors import NotFound, Unavailable
from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.nodes.document_files import json_handle
from stepline.providers.config import ProviderCatalog, ProviderConfigError, configured_providers
from stepline.records import (
    INPUT_JSON_HANDLE,
    OUTPUT_JSON_HANDLE,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
)
from stepline.retrieval.access import EmbeddingsMismatch
from stepline.retrieval.embeddings import OpenAIEmbedder
from stepline.retrieval.providers import (
    EmbeddingsUnavailable,
    embeddings_provider,
    provider_embedder,
)

MAX_TOP_K = 50


class EmbeddingsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, description="A provider of the server's configuration.")
    model: str = Field(min_length=1, description="The embedding model the collection uses.")


class KnowledgeRetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(min_length=1, description="The collection's id or name.")
    query: str = Field(description="What to look for, e.g. '{{ inputs.question }}'.")
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="How many chunks to return.")
    min_score: float | None = Field(
        default=None, description="Leave out chunks scoring below this (scores vary by database)."
    )
    embeddings: EmbeddingsConfig | None = Field(
        default=None, description="Embed the query too, for hybrid ranking (see the kind's doc)."
    )


class KnowledgeRetrievalNode(NodeKind):
    """The best-matching chunks of a knowledge collection."""

    type = "knowledge_retrieval"
    config_model = KnowledgeRetrievalConfig
    description = (
        "Searches a knowledge collection (full-text, BM25-ranked) and outputs the top chunks."
    )

    raw_fields: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def __init__(self, providers: ProviderCatalog | Callable[[], ProviderCatalog] | None = None):
        self._providers = providers

    def providers(self) -> ProviderCatalog:
        """The configured providers (the server's configuration file unless given)."""
        if isinstance(self._providers, ProviderCatalog):
            return self._providers
        return self._providers() if self._providers is not None else configured_providers()

    def configured_secrets(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(path below config, name) of the secret holding the embeddings provider's key."""
        embeddings = config.get("embeddings")
        provider = embeddings.get("provider") if isinstance(embeddings, Mapping) else None
        if not isinstance(provider, str):
            return []
        try:
            settings = self.providers().get(provider)
        except ProviderConfigError:
            return []
        secret = None if settings is None else settings.api_key_secret
        return [] if secret is None else [("embeddings.provider", secret)]

    def embedder(self, ctx: NodeContext, config: EmbeddingsConfig) -> OpenAIEmbedder:
        """The embeddings client of this step; a permanent input error when it is gone."""
        try:
            settings = embeddings_provider(self.providers(), config.provider)
            return provider_embedder(
                settings,
                config.model,
                ctx.scope.get("secrets") or {},
                pool=ctx.services.llm,
                timeout_s=ctx.timeout_s,
            )
        except EmbeddingsUnavailable as exc:
            raise _input_error(exc.message) from None

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(KnowledgeRetrievalConfig, ctx.config)
        if ctx.knowledge is None:
            raise NodeError(f"'{ctx.node.id}' searches collections, but this engine has none")
        searched: dict[str, Any] = {
            "collection": config.collection,
            "query": config.query,
            "top_k": config.top_k,
        }
        if config.min_score is not None:
            searched["min_score"] = config.min_score
        embedder = None
        if config.embeddings is not None:
            searched["embeddings"] = config.embeddings.model_dump()
            embedder = self.embedder(ctx, config.embeddings)
        try:
            found = await ctx.knowledge.search(
                config.collection, config.query, config.top_k, embedder=embedder
            )
        except NotFound as exc:
            message = f"collection {config.collection!r} not found"
            raise NodeError(
                message,
                stage=ErrorStage.execution,
                details=ErrorDetails(
                    type="CollectionNotFound",
                    message=str(exc),
                    context={"collection": config.collection},
                ),
            ) from exc
        except EmbeddingsMismatch as exc:  # not the provider or model of its chunks
            raise NodeError(
                exc.message,
                stage=ErrorStage.input_collection,
                details=ErrorDetails(
                    type="EmbeddingsMismatch",
                    message=exc.message,
                    context={"collection": config.collection},
                ),
            ) from exc
        except Unavailable as exc:  # the embeddings provider, for a hybrid search
            raise NodeError(exc.message, category=ErrorCategory.transient) from exc
        hits = [
            hit for hit in found.hits if config.min_score is None or hit.score >= config.min_score
        ]
        output = {
            "collection_id": str(found.collection_id),
            "collection": found.collection_name,
            "query": config.query,
            "results": [hit.output() for hit in hits],
            "count": len(hits),
            "ranking": found.ranking,
        }
        return NodeResult(
            output=output,
            handle_inputs={INPUT_JSON_HANDLE: json_handle(searched)},
            handle_outputs={OUTPUT_JSON_HANDLE: json_handle(output)},
        )


def _input_error(message: str) -> NodeError:
    return NodeError(
        message,
        stage=ErrorStage.input_collection,
        details=ErrorDetails(type="ProviderUnavailable", message=message),
    )
