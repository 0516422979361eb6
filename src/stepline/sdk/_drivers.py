"""The two drivers of the SDK's flows: the only code that differs between the faces.

`SyncDriver` performs a flow's effects with `httpx.Client` and `time.sleep`,
`AsyncDriver` with `httpx.AsyncClient` and `asyncio.sleep`. Each is one loop: start or
resume the flow with the last effect's result (or throw it the transport error the effect
raised), perform the effect it yields, hand `Emit`ted items to the caller. A flow run for
its result is iterated through `returning`, so both uses share that loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any, TypeVar, cast

import httpx

from stepline.sdk._flows import (
    Close,
    Effect,
    Emit,
    Flow,
    Flows,
    Lines,
    NextLine,
    Read,
    Send,
    Sleep,
    returning,
    streamed_response,
)
from stepline.sdk._http import Call, timeout_for

T = TypeVar("T")


def _request(
    http: httpx.Client | httpx.AsyncClient, call: Call[Any], timeout: float
) -> httpx.Request:
    return http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json if call.files is None else None,
        files=call.files,
        headers=call.headers,
        timeout=timeout_for(call, timeout),
    )


def _resume(flow: Flow[Any], sent: Any, thrown: BaseException | None) -> Effect | None:
    """The flow's next effect, or None once it returned."""
    try:
        return flow.send(sent) if thrown is None else flow.throw(thrown)
    except StopIteration:
        return None


class SyncDriver:
    def __init__(self, http: httpx.Client, flows: Flows, timeout: float) -> None:
        self.http = http
        self.flows = flows
        self.timeout = timeout

    def run(self, flow: Flow[T]) -> T:
        result: Any = None
        for result in self.iterate(returning(flow)):  # noqa: B007 - the last item is the result
            pass
        return cast(T, result)

    def iterate(self, flow: Flow[Any]) -> Generator[Any, None, None]:
        touched: list[httpx.Response] = []
        sent: Any = None
        thrown: httpx.TransportError | None = None
        try:
            while (effect := _resume(flow, sent, thrown)) is not None:
                sent, thrown = None, None
                if isinstance(effect, Emit):
                    yield effect.item
                    continue
                if (response := streamed_response(effect)) is not None:
                    touched.append(response)
                try:
                    sent = self._perform(effect)
                except httpx.TransportError as exc:
                    thrown = exc
                if isinstance(effect, Send) and effect.stream and sent is not None:
                    touched.append(sent)
        except BaseException:
            for response in touched:
                response.close()
            raise
        finally:
            flow.close()

    def _perform(self, effect: Effect) -> Any:
        match effect:
            case Send(call, stream):
                return self.http.send(_request(self.http, call, self.timeout), stream=stream)
            case Sleep(seconds):
                time.sleep(seconds)
            case Read(response):
                return response.read()
            case Lines(response):
                return response.iter_lines()
            case NextLine(lines):
                return next(lines, None)
            case Close(response):
                response.close()
        return None


class AsyncDriver:
    def __init__(self, http: httpx.AsyncClient, flows: Flows, timeout: float) -> None:
        self.http = http
        self.flows = flows
        self.timeout = timeout

    async def run(self, flow: Flow[T]) -> T:
        result: Any = None
        async for result in self.iterate(returning(flow)):  # noqa: B007 - as in SyncDriver
            pass
        return cast(T, result)

    async def iterate(self, flow: Flow[Any]) -> AsyncGenerator[Any, None]:
        touched: list[httpx.Response] = []
        sent: Any = None
        thrown: httpx.TransportError | None = None
        try:
            while (effect := _resume(flow, sent, thrown)) is not None:
                sent, thrown = None, None
                if isinstance(effect, Emit):
                    yield effect.item
                    continue
                if (response := streamed_response(effect)) is not None:
                    touched.append(response)
                try:
                    sent = await self._perform(effect)
                except httpx.TransportError as exc:
                    thrown = exc
                if isinstance(effect, Send) and effect.stream and sent is not None:
                    touched.append(sent)
        except BaseException:
            for response in touched:
                await response.aclose()
            raise
        finally:
            flow.close()

    async def _perform(self, effect: Effect) -> Any:
        match effect:
            case Send(call, stream):
                return await self.http.send(_request(self.http, call, self.timeout), stream=stream)
            case Sleep(seconds):
                await asyncio.sleep(seconds)
            case Read(response):
                return await response.aread()
            case Lines(response):
                return response.aiter_lines()
            case NextLine(lines):
                return await anext(lines, None)
            case Close(response):
                await response.aclose()
        return None
