"""The `knowledge_retrieval` node kind: the chunks of a knowledge collection that best
match a query, best first.

The collection is named by id or name (a template, like the query); another
organization's collection, or a deleted one, fails the step as not found. Each result
has the chunk's `text`, its `score` (higher first; comparable within one search), and
where it is from: `source`, `file_id` (for a file), `position` among the source's
chunks, `page`, and its character offsets.

Records `input-json-0` (what was searched) and `output-json-0` (the output), as Retab's
steps show them.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.errors import NotFound, Unavailable
from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.nodes.document_files import json_handle
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage

MAX_TOP_K = 50


class KnowledgeRetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(min_length=1, description="The collection's id or name.")
    query: str = Field(description="What to look for, e.g. '{{ inputs.question }}'.")
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="How many chunks to return.")
    min_score: float | None = Field(
        default=None, description="Leave out chunks scoring below this (scores vary by database)."
    )


class KnowledgeRetrievalNode(NodeKind):
    """The best-matching chunks of a knowledge collection."""

    type = "knowledge_retrieval"
    config_model = KnowledgeRetrievalConfig
    description = (
        "Searches a knowledge collection (full-text, BM25-ranked) and outputs the top chunks."
    )

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
        try:
            found = await ctx.knowledge.search(config.collection, config.query, config.top_k)
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
            handle_inputs={"input-json-0": json_handle(searched)},
            handle_outputs={"output-json-0": json_handle(output)},
        )
