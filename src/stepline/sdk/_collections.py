"""The collections' endpoints as `Call` builders, and their two faces (`client.collections`
and `async_client.collections`): each method is one call of a builder here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from stepline.sdk._http import Call, query
from stepline.sdk.models import Collection, CollectionSource, Page, SearchResults
from stepline.sdk.pagination import AsyncPageIterator, PageIterator

if TYPE_CHECKING:
    from stepline.sdk.async_client import AsyncClient
    from stepline.sdk.client import Client

M = TypeVar("M", bound=BaseModel)
Id = UUID | str
COLLECTIONS = "/v1/collections"
Sources = list[CollectionSource]


def _model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _collections_page(response: httpx.Response) -> Page[Collection]:
    body = response.json()
    return Page(
        items=[Collection.model_validate(item) for item in body["data"]],
        next_cursor=body.get("next_cursor"),
        prev_cursor=body.get("prev_cursor"),
    )


def _sources(response: httpx.Response) -> Sources:
    return [CollectionSource.model_validate(item) for item in response.json()["data"]]


def collection_path(collection_id: Id) -> str:
    return f"{COLLECTIONS}/{collection_id}"


def create_collection(
    name: str, description: str, embeddings: Mapping[str, str] | None
) -> Call[Collection]:
    body: dict[str, Any] = {"name": name, "description": description}
    if embeddings is not None:
        body["embeddings"] = dict(embeddings)
    return Call("POST", COLLECTIONS, _model(Collection), json=body)


def list_collections(after: str | None, limit: int | None) -> Call[Page[Collection]]:
    params = query({"after": after, "limit": limit})
    return Call("GET", COLLECTIONS, _collections_page, params=params, idempotent=True)


def get_collection(collection_id: Id) -> Call[Collection]:
    return Call("GET", collection_path(collection_id), _model(Collection), idempotent=True)


def delete_collection(collection_id: Id) -> Call[None]:
    # Not retried: a second delete after a first that went through would be a 404.
    return Call("DELETE", collection_path(collection_id), _nothing)


def add_source(
    collection_id: Id, body: Mapping[str, Any], provider: str | None
) -> Call[CollectionSource]:
    payload = {k: v for k, v in {**body, "provider": provider}.items() if v is not None}
    path = f"{collection_path(collection_id)}/sources"
    return Call("POST", path, _model(CollectionSource), json=payload)


def list_sources(collection_id: Id) -> Call[Sources]:
    path = f"{collection_path(collection_id)}/sources"
    return Call("GET", path, _sources, idempotent=True)


def remove_source(collection_id: Id, source_id: Id) -> Call[None]:
    return Call("DELETE", f"{collection_path(collection_id)}/sources/{source_id}", _nothing)


def search(
    collection_id: Id,
    query_text: str,
    top_k: int,
    min_score: float | None,
    provider: str | None,
) -> Call[SearchResults]:
    body: dict[str, Any] = {"query": query_text, "top_k": top_k}
    if min_score is not None:
        body["min_score"] = min_score
    if provider is not None:
        body["provider"] = provider
    path = f"{collection_path(collection_id)}/search"
    # A search changes nothing: a retry is always safe.
    return Call("POST", path, _model(SearchResults), json=body, idempotent=True)


class Collections:
    """The knowledge collections of the key's organization (read scope to read and search,
    write scope to change)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        name: str,
        *,
        description: str = "",
        embeddings: Mapping[str, str] | None = None,
    ) -> Collection:
        """A new collection; `embeddings` ({provider, model}) embeds its chunks (hybrid)."""
        return self._client.call(create_collection(name, description, embeddings))

    def list(self, *, page_size: int | None = None) -> PageIterator[Collection]:
        """Newest first, every page."""
        return PageIterator(self._client._driver, lambda after: list_collections(after, page_size))

    def get(self, collection_id: Id) -> Collection:
        return self._client.call(get_collection(collection_id))

    def delete(self, collection_id: Id) -> None:
        self._client.call(delete_collection(collection_id))

    def add_text(
        self, collection_id: Id, text: str, *, source: str, provider: str | None = None
    ) -> CollectionSource:
        """Add a text, chunked, as one source labelled `source`."""
        body = {"text": text, "source": source}
        return self._client.call(add_source(collection_id, body, provider))

    def add_file(
        self,
        collection_id: Id,
        file_id: Id,
        *,
        source: str | None = None,
        provider: str | None = None,
    ) -> CollectionSource:
        """Add a file of the organization (parsed to text) as one source."""
        body = {"file_id": str(file_id), "source": source}
        return self._client.call(add_source(collection_id, body, provider))

    def sources(self, collection_id: Id) -> Sources:
        return self._client.call(list_sources(collection_id))

    def remove_source(self, collection_id: Id, source_id: Id) -> None:
        self._client.call(remove_source(collection_id, source_id))

    def search(
        self,
        collection_id: Id,
        query: str,
        *,
        top_k: int = 5,
        min_score: float | None = None,
        provider: str | None = None,
    ) -> SearchResults:
        """The collection's best chunks for `query`, best first."""
        return self._client.call(search(collection_id, query, top_k, min_score, provider))


class AsyncCollections:
    """`Collections` of `Client`, to await (its docstrings say what each method does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        name: str,
        *,
        description: str = "",
        embeddings: Mapping[str, str] | None = None,
    ) -> Collection:
        return await self._client.call(create_collection(name, description, embeddings))

    def list(self, *, page_size: int | None = None) -> AsyncPageIterator[Collection]:
        return AsyncPageIterator(
            self._client._driver, lambda after: list_collections(after, page_size)
        )

    async def get(self, collection_id: Id) -> Collection:
        return await self._client.call(get_collection(collection_id))

    async def delete(self, collection_id: Id) -> None:
        await self._client.call(delete_collection(collection_id))

    async def add_text(
        self, collection_id: Id, text: str, *, source: str, provider: str | None = None
    ) -> CollectionSource:
        body = {"text": text, "source": source}
        return await self._client.call(add_source(collection_id, body, provider))

    async def add_file(
        self,
        collection_id: Id,
        file_id: Id,
        *,
        source: str | None = None,
        provider: str | None = None,
    ) -> CollectionSource:
        body = {"file_id": str(file_id), "source": source}
        return await self._client.call(add_source(collection_id, body, provider))

    async def sources(self, collection_id: Id) -> Sources:
        return await self._client.call(list_sources(collection_id))

    async def remove_source(self, collection_id: Id, source_id: Id) -> None:
        await self._client.call(remove_source(collection_id, source_id))

    async def search(
        self,
        collection_id: Id,
        query: str,
        *,
        top_k: int = 5,
        min_score: float | None = None,
        provider: str | None = None,
    ) -> SearchResults:
        return await self._client.call(search(collection_id, query, top_k, min_score, provider))
