"""Iterators over list endpoints that follow `next_cursor` until the last page.

Nothing is requested until iteration starts, and one page is held at a time, so listing
every step of a 10,000-step run needs no more memory than one page. The cursor logic is
`Flows.pages`; these classes are its sync and async faces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

from stepline.sdk._drivers import AsyncDriver, SyncDriver
from stepline.sdk._http import Call
from stepline.sdk.models import Page

T = TypeVar("T")

PageCall = Callable[[str | None], Call[Page[T]]]
"""The request for the page after a cursor (None: the first page)."""


class PageIterator(Generic[T]):
    """Every item of a listing, page after page; `pages()` yields the pages themselves."""

    def __init__(self, driver: SyncDriver, page_call: PageCall[T], after: str | None = None):
        self._driver = driver
        self._page_call = page_call
        self._after = after

    def pages(self) -> Iterator[Page[T]]:
        return self._driver.iterate(self._driver.flows.pages(self._page_call, self._after))

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def first_page(self) -> Page[T]:
        return self._driver.run(self._driver.flows.call(self._page_call(self._after)))


class AsyncPageIterator(Generic[T]):
    """`PageIterator` for `AsyncClient`: use with `async for`."""

    def __init__(self, driver: AsyncDriver, page_call: PageCall[T], after: str | None = None):
        self._driver = driver
        self._page_call = page_call
        self._after = after

    def pages(self) -> AsyncIterator[Page[T]]:
        return self._driver.iterate(self._driver.flows.pages(self._page_call, self._after))

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def first_page(self) -> Page[T]:
        return await self._driver.run(self._driver.flows.call(self._page_call(self._after)))

    async def to_list(self) -> list[T]:
        return [item async for item in self]
