"""Everything the SDK does over HTTP, written once, as generators that never do I/O.

A flow yields an effect (send this request, sleep, read a body or a line, close a
response, emit an item to the caller) and is sent the effect's result back, or thrown the
`httpx.TransportError` that performing it raised. `_drivers` performs the effects, with
`httpx.Client` and `time.sleep` for `Client`, with `httpx.AsyncClient` and `asyncio.sleep`
for `AsyncClient`: so retries, backoff, error decoding, streams, pagination and `wait`
behave the same in both faces because they are the same code.

Closing: a flow that ends normally closed each streamed response it opened (except the
one it returns); when it ends by an exception, or its caller stops iterating early, the
driver closes every streamed response the flow touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from stepline.sdk._http import Call, RetryPolicy, transport_error
from stepline.sdk.errors import TransportError, error_from_response
from stepline.sdk.models import Page, Run, Step
from stepline.sdk.sse import SseDecoder

T = TypeVar("T")

# How often `runs.wait` looks at the run: quickly at first, then at most once a second.
POLL_FIRST_S = 0.05
POLL_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class Send:
    """Send `call` once; result: the `httpx.Response` (its body unread when `stream`)."""

    call: Call[Any]
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Read:
    """Read a streamed response's whole body; result: the bytes."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Lines:
    """Start reading a streamed response by lines; result: a handle for `NextLine`."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class NextLine:
    """Result: the next line of the `Lines` handle, or None at the end of the body."""

    lines: Any


@dataclass(frozen=True, slots=True)
class Close:
    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand `item` to the caller iterating the flow; result: None."""

    item: Any


Effect = Send | Sleep | Read | Lines | NextLine | Close | Emit
Flow = Generator[Effect, Any, T]


def streamed_response(effect: Effect) -> httpx.Response | None:
    """The streamed response an effect touches, which the driver closes if the flow fails."""
    if isinstance(effect, Read | Lines | Close):
        return effect.response
    return None


def returning(flow: Flow[T]) -> Flow[None]:
    """`flow`, emitting its result as its last item: how a driver runs a flow for its result
    with the one loop that iterates flows."""
    result = yield from flow
    yield Emit(result)


class EventCursor(Protocol):
    """Where an event stream keeps the id of the last event it handed out."""

    last_event_id: int | None


class Flows:
    """The flows of one client: its retry policy, and its base URL for error messages."""

    def __init__(self, base_url: str, retry: RetryPolicy) -> None:
        self.base_url = base_url
        self.retry = retry

    def _broken(self, exc: httpx.TransportError) -> TransportError:
        return transport_error(exc, self.base_url)

    def send(self, call: Call[Any], *, stream: bool = False) -> Flow[httpx.Response]:
        """The successful answer to `call`, retried as the policy allows; an error answer
        raises its `ApiError`, no answer a `TransportError`."""
        attempt = 0
        while True:
            try:
                response: httpx.Response = yield Send(call, stream)
            except httpx.TransportError as exc:
                if not self.retry.retries_exception(call, exc, attempt):
                    raise self._broken(exc) from exc
                yield Sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            retried = self.retry.retries_status(call, response.status_code, attempt)
            if stream and not retried:
                try:
                    yield Read(response)  # the error envelope
                except httpx.TransportError as exc:
                    raise self._broken(exc) from exc
            if stream:
                yield Close(response)
            if not retried:
                raise error_from_response(response)
            yield Sleep(self.retry.delay(attempt, response))
            attempt += 1

    def call(self, call: Call[T]) -> Flow[T]:
        response = yield from self.send(call)
        return call.parse(response)

    def pages(
        self, page_call: Callable[[str | None], Call[Page[T]]], after: str | None
    ) -> Flow[None]:
        """Emit each page of a listing, following `next_cursor` until the last one."""
        cursor = after
        while True:
            page = yield from self.call(page_call(cursor))
            yield Emit(page)
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def wait(self, get_run: Call[Run], timeout_s: float | None) -> Flow[Run]:
        """The run once it is settled, or as it is when `timeout_s` is up: polled quickly at
        first, then once a second."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pause = POLL_FIRST_S
        while True:
            run = yield from self.call(get_run)
            if run.settled:
                return run
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return run
                pause = min(pause, left)
            yield Sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def read_json(self, call: Call[Any]) -> Flow[Any]:
        """A download's body, read as a stream (as ndjson ones are), parsed as JSON."""
        response = yield from self.send(call, stream=True)
        try:
            body = yield Read(response)
        except httpx.TransportError as exc:
            raise self._broken(exc) from exc
        yield Close(response)
        return json.loads(body)

    def steps(self, response: httpx.Response) -> Flow[None]:
        """Emit the `Step` of each line of a streamed ndjson download, then close it."""
        try:
            handle = yield Lines(response)
            while (line := (yield NextLine(handle))) is not None:
                if line.strip():
                    yield Emit(Step.model_validate_json(line))
        except httpx.TransportError as exc:
            raise self._broken(exc) from exc
        yield Close(response)

    def events(
        self, cursor: EventCursor, events_call: Callable[[int | None], Call[Any]]
    ) -> Flow[None]:
        """Emit a run's events until the run ends or the server ends the stream.

        A read timeout (a quiet run) asks again from `cursor.last_event_id`; a broken
        connection does too, after a backoff, up to the policy's retries in a row.
        """
        breaks = 0
        while True:
            response = yield from self.send(events_call(cursor.last_event_id), stream=True)
            decoder = SseDecoder()
            ended, pause = True, 0.0
            try:
                handle = yield Lines(response)
                while (line := (yield NextLine(handle))) is not None:
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    breaks = 0
                    if event.id is not None:
                        cursor.last_event_id = event.id
                    yield Emit(event)
                    if event.is_terminal:
                        break
            except httpx.ReadTimeout:
                ended = False  # a quiet run: ask again from the last event seen
            except httpx.TransportError as exc:
                if breaks >= self.retry.max_retries:
                    raise self._broken(exc) from exc
                ended, pause = False, self.retry.delay(breaks)
                breaks += 1
            yield Close(response)
            if ended:
                return
            if pause:
                yield Sleep(pause)
