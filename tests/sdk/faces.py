"""Both faces of the SDK behind one synchronous interface, so that each test body runs on
`Client` and on `AsyncClient` alike.

`synced(AsyncClient(...))` answers as a `Client` would: a coroutine's result is awaited,
an async iterable is iterated, an async context manager entered, each on an event loop in
a thread of its own (the test itself stays synchronous, as a `Client` user's code is).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar, cast

from stepline import AsyncClient, Client

T = TypeVar("T")

FACES = ["sync", "async"]
Connect = Callable[..., Client]
"""connect(base_url, api_key, **options) -> a client of the face under test (use `with`)."""


class LoopThread:
    """An event loop running in a daemon thread, for the async face's coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def synced(value: Any, loop: LoopThread) -> Any:
    """`value` of the async face as the sync face would hand it out."""
    if inspect.isawaitable(value):
        value = loop.run(_await(value))
    if inspect.isasyncgen(value) or type(value).__name__.startswith("Async"):
        return Synced(value, loop)
    return value


class Synced:
    """An object of the async face seen through the sync face's methods."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        if name == "close" and not hasattr(self._target, "close"):
            name = "aclose"
        value = getattr(self._target, name)
        if not callable(value):
            return synced(value, self._loop)

        def call(*args: Any, **kwargs: Any) -> Any:
            return synced(value(*args, **kwargs), self._loop)

        return call

    def __iter__(self) -> Iterator[Any]:
        iterator: AsyncIterator[Any] = self._target.__aiter__()
        try:
            while True:
                try:
                    item = self._loop.run(_await(anext(iterator)))
                except StopAsyncIteration:
                    return
                yield synced(item, self._loop)
        finally:
            if inspect.isasyncgen(iterator):
                self._loop.run(iterator.aclose())

    def __enter__(self) -> Synced:
        self._loop.run(self._target.__aenter__())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._loop.run(self._target.__aexit__(*exc_info))


def connector(face: str, loop: LoopThread) -> Connect:
    """How a test of `face` makes a client."""
    if face == "sync":
        return Client

    def connect(*args: Any, **kwargs: Any) -> Client:
        async def make() -> AsyncClient:
            return AsyncClient(*args, **kwargs)

        return cast(Client, Synced(loop.run(make()), loop))

    return connect
