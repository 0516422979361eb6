"""Iterators over list endpoints that follow `next_cursor` until the last page.

Nothing is requested until iteration starts, and one page is held at a time, so listing
every step of a 10,000-step run needs no more memory than one page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from stepline.sdk.models import Page

T = TypeVar("T")


class PageIterator(Generic[T]):
    """Every item of a listing, page after page; `pages()` yields the pages themselves."""

    def __init__(self, fetch: Callable[[str | None], Page[T]], after: str | None = None) -> None:
        self._fetch = fetch
        self._after = after

    def pages(self) -> Iterator[Page[T]]:
        cursor = self._after
        while True:
            page = self._fetch(cursor)
            yield page
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def first_page(self) -> Page[T]:
        return self._fetch(self._after)


class AsyncPageIterator(Generic[T]):
    """The async twin of `PageIterator`: use with `async for`."""

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[Page[T]]], after: str | None = None
    ) -> None:
        self._fetch = fetch
        self._after = after

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor = self._after
        while True:
            page = await self._fetch(cursor)
            yield page
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def first_page(self) -> Page[T]:
        return await self._fetch(self._after)

    async def to_list(self) -> list[T]:
        return [item async for item in self]
