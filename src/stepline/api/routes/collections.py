"""/v1/collections: an organization's knowledge collections (read scope to read and search,
write scope to change): create, list, read, delete; add sources (a text with a label, or a
file of the organization), list and remove them; search.

Another organization's collection, source or file is a 404, as if it did not exist. The
verbs are `stepline.service.collections`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepline.api.auth import ReadKey, WriteKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, invalid, one_direction
from stepline.api.models import ListResponse
from stepline.api.responses import json_response
from stepline.api.state import AppState, StateDep
from stepline.errors import Detail, InvalidRequest
from stepline.retrieval.library import MAX_SOURCE_LABEL_CHARS
from stepline.service import Caller
from stepline.service import collections as verbs
from stepline.store.collections import MAX_NAME_CHARS, CollectionRecord, SourceRecord
from stepline.store.paging import MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/collections", tags=["collections"], route_class=DocumentRoute)

CollectionId = Annotated[UUID, Path(description="The collection's id.")]
SourceId = Annotated[UUID, Path(description="The source's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]
MAX_DESCRIPTION_CHARS = 2000


class EmbeddingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=200, description="A configured provider.")
    model: str = Field(min_length=1, max_length=200, description="Its embedding model.")


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, description="Unique in the org.")
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    embeddings: EmbeddingsIn | None = Field(
        default=None, description="Embed the chunks too, for hybrid ranking."
    )


class CollectionOut(BaseModel):
    id: UUID
    name: str
    description: str
    embedding_model: str | None
    embedding_provider: str | None = Field(
        description="The provider that embeds its chunks (null: BM25 only, or not recorded)."
    )
    created_at: datetime


class SourceAdd(BaseModel):
    """A text with its label (`text`, `source`), or a file of the organization (`file_id`)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="The text to add, chunked.")
    source: str | None = Field(
        default=None,
        max_length=MAX_SOURCE_LABEL_CHARS,
        description="A label (required with `text`; a file's defaults to its name).",
    )
    file_id: UUID | None = Field(default=None, description="A file of the organization.")
    provider: str | None = Field(
        default=None,
        max_length=200,
        description="The embeddings provider, for an embedded collection (default: the only one).",
    )


class SourceOut(BaseModel):
    source_id: UUID
    collection_id: UUID
    file_id: UUID | None
    source: str
    chunk_count: int
    created_at: datetime


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(max_length=verbs.MAX_QUERY_CHARS, description="What to look for.")
    top_k: int = Field(default=5, ge=1, le=verbs.MAX_TOP_K, description="How many chunks.")
    min_score: float | None = Field(default=None, description="Leave out chunks scoring less.")
    provider: str | None = Field(
        default=None,
        max_length=200,
        description="The embeddings provider, for an embedded collection (default: the only one).",
    )


class SearchHitOut(BaseModel):
    text: str
    score: float
    file_id: UUID | None
    source: str
    source_id: UUID
    position: int
    page: int | None
    char_start: int
    char_end: int
    chunk_id: UUID


class SearchOut(BaseModel):
    collection_id: UUID
    collection: str
    query: str
    ranking: str = Field(description="`bm25`, or `hybrid` (with embeddings).")
    count: int
    results: list[SearchHitOut] = Field(description="Best first.")


@contextmanager
def _in_body() -> Iterator[None]:
    """The verbs name a body's field as `name`; the API as `body.name`."""
    try:
        yield
    except InvalidRequest as exc:
        if exc.details and not any(d.field.startswith("body.") for d in exc.details):
            exc.details = [Detail(f"body.{d.field}", d.message) for d in exc.details]
        raise


def _collection(record: CollectionRecord) -> dict[str, Any]:
    return CollectionOut.model_validate(record, from_attributes=True).model_dump(mode="json")


def _source(record: SourceRecord) -> dict[str, Any]:
    return SourceOut.model_validate(record, from_attributes=True).model_dump(mode="json")


@router.post(
    "",
    status_code=201,
    response_model=CollectionOut,
    responses=error_responses(409),
    summary="Create a collection",
)
async def create_collection(
    body: CollectionCreate, state: StateDep, principal: WriteKey
) -> Response:
    embeddings = None
    if body.embeddings is not None:
        embeddings = verbs.Embeddings(body.embeddings.provider, body.embeddings.model)
    with _in_body():
        record = await verbs.create_collection(
            state.service, principal.caller, body.name, body.description, embeddings=embeddings
        )
    return json_response(_collection(record), 201)


@router.get(
    "",
    response_model=ListResponse[CollectionOut],
    summary="List the collections, newest first",
)
async def list_collections(
    state: StateDep,
    principal: ReadKey,
    limit: Limit = 50,
    after: After = None,
    before: Before = None,
) -> Response:
    one_direction(after, before)
    page = await verbs.list_collections(
        state.service, principal.caller, limit=limit, after=after, before=before
    )
    items = [_collection(record) for record in page.items]
    return json_response(
        {"data": items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
    )


@router.get(
    "/{collection_id}",
    response_model=CollectionOut,
    responses=error_responses(404),
    summary="One collection",
)
async def get_collection(
    collection_id: CollectionId, state: StateDep, principal: ReadKey
) -> Response:
    record = await verbs.get_collection(state.service, principal.caller, collection_id)
    return json_response(_collection(record))


@router.delete(
    "/{collection_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
    summary="Delete a collection and its chunks",
)
async def delete_collection(
    collection_id: CollectionId, state: StateDep, principal: WriteKey
) -> Response:
    await verbs.delete_collection(state.service, principal.caller, collection_id)
    return Response(status_code=204)


@router.post(
    "/{collection_id}/sources",
    status_code=201,
    response_model=SourceOut,
    responses=error_responses(404, 413),
    summary="Add a source: a text with its label, or a file of the organization",
)
async def add_source(
    collection_id: CollectionId, body: SourceAdd, state: StateDep, principal: WriteKey
) -> Response:
    with _in_body():
        record = await _add(state, principal.caller, collection_id, body)
    return json_response(_source(record), 201)


async def _add(
    state: AppState, caller: Caller, collection_id: UUID, body: SourceAdd
) -> SourceRecord:
    if (body.text is None) == (body.file_id is None):
        invalid("body.text", "give either text (with source) or file_id")
    if body.file_id is not None:
        record = await verbs.add_file(
            state.service,
            caller,
            collection_id,
            body.file_id,
            source=body.source,
            provider=body.provider,
        )
    else:
        assert body.text is not None
        if body.source is None or not body.source.strip():
            invalid("body.source", "a text needs a source label")
        record = await verbs.add_text(
            state.service,
            caller,
            collection_id,
            body.text,
            source=body.source,
            provider=body.provider,
        )
    return record


@router.get(
    "/{collection_id}/sources",
    response_model=ListResponse[SourceOut],
    responses=error_responses(404),
    summary="The collection's sources, oldest first",
)
async def list_sources(
    collection_id: CollectionId, state: StateDep, principal: ReadKey
) -> Response:
    sources = await verbs.list_sources(state.service, principal.caller, collection_id)
    return json_response(
        {"data": [_source(s) for s in sources], "next_cursor": None, "prev_cursor": None}
    )


@router.delete(
    "/{collection_id}/sources/{source_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
    summary="Remove a source and its chunks",
)
async def remove_source(
    collection_id: CollectionId, source_id: SourceId, state: StateDep, principal: WriteKey
) -> Response:
    await verbs.remove_source(state.service, principal.caller, collection_id, source_id)
    return Response(status_code=204)


@router.post(
    "/{collection_id}/search",
    response_model=SearchOut,
    responses=error_responses(404),
    summary="The collection's chunks that best match a query, best first",
)
async def search_collection(
    collection_id: CollectionId, body: SearchIn, state: StateDep, principal: ReadKey
) -> Response:
    with _in_body():
        found = await verbs.search(
            state.service,
            principal.caller,
            collection_id,
            body.query,
            top_k=body.top_k,
            min_score=body.min_score,
            provider=body.provider,
        )
    return json_response(verbs.search_output(body.query, found))
