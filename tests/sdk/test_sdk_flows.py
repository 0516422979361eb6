"""The SDK's flows driven by hand, without a network: what each one asks to do (send,
sleep, read, close) and what it makes of the answers. The faces' tests prove the drivers
perform these effects; these pin the decisions themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from stepline import errors
from stepline.sdk import Page, Run, TransportError, UnavailableError, _api
from stepline.sdk._flows import (
    POLL_FIRST_S,
    Close,
    Emit,
    Flow,
    Flows,
    Lines,
    NextLine,
    Read,
    Send,
    Sleep,
)
from stepline.sdk._http import RetryPolicy

BASE = "http://127.0.0.1:9"
FLOWS = Flows(BASE, RetryPolicy(max_retries=3))
WORKFLOW_ID = uuid.uuid4()


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("GET", BASE))


def busy(**headers: str) -> httpx.Response:
    return answer(503, {"error": {"code": "unavailable", "message": "busy"}}, **headers)


def drive(flow: Flow[Any], results: Iterable[Any]) -> tuple[list[Any], Any]:
    """Run `flow`, answering each Send, Read and Lines with the next of `results` (an
    exception is thrown into the flow) and each NextLine from its handle; returns the
    effects the flow yielded and what it returned."""
    pending = iter(results)
    effects: list[Any] = []
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            effect = flow.send(sent) if thrown is None else flow.throw(thrown)
        except StopIteration as stop:
            return effects, stop.value
        effects.append(effect)
        sent, thrown = None, None
        if isinstance(effect, Send | Read | Lines):
            result = next(pending)
            if isinstance(result, BaseException):
                thrown = result
            else:
                sent = result
        elif isinstance(effect, NextLine):
            try:
                sent = next(effect.lines, None)
            except httpx.TransportError as exc:
                thrown = exc


def kinds(effects: list[Any]) -> list[str]:
    return [type(e).__name__ for e in effects]


def test_a_retry_after_sets_the_pause_before_the_next_try() -> None:
    ok = answer(200, {"id": 1})
    effects, response = drive(
        FLOWS.send(_api.get_workflow(WORKFLOW_ID)), [busy(**{"Retry-After": "7"}), ok]
    )
    assert kinds(effects) == ["Send", "Sleep", "Send"] and response is ok
    assert effects[1] == Sleep(7.0)


def test_a_refused_start_of_a_run_is_raised_at_once() -> None:
    call = _api.create_run(
        WORKFLOW_ID, {}, wait=False, timeout_s=None, idempotency_key=None, client_timeout=30
    )
    with pytest.raises(UnavailableError) as refused:
        drive(FLOWS.send(call), [busy()])
    assert isinstance(refused.value, errors.Unavailable) and refused.value.status == 503


def test_a_connection_never_opened_is_retried_even_for_a_start() -> None:
    call = _api.create_run(
        WORKFLOW_ID, {}, wait=False, timeout_s=None, idempotency_key=None, client_timeout=30
    )
    refused = httpx.ConnectError("refused")
    effects, _ = drive(FLOWS.send(call), [refused, answer(202, {})])
    assert kinds(effects) == ["Send", "Sleep", "Send"]
    reset = httpx.ReadError("reset")
    with pytest.raises(TransportError) as broken:
        drive(FLOWS.send(call), [reset])
    assert BASE in broken.value.message and broken.value.__cause__ is reset


def test_a_streamed_error_answer_is_read_and_closed_before_it_is_raised() -> None:
    call = _api.retry_run(WORKFLOW_ID, uuid.uuid4())
    conflict = answer(409, {"error": {"code": "conflict", "message": "not failed"}})
    with pytest.raises(errors.Conflict):
        drive(FLOWS.send(call, stream=True), [conflict, b""])


def test_a_streamed_answer_retried_is_closed_first() -> None:
    effects, _ = drive(
        FLOWS.send(_api.get_workflow(WORKFLOW_ID), stream=True), [busy(), answer(200)]
    )
    assert kinds(effects) == ["Send", "Close", "Sleep", "Send"]


def run_json(status: str) -> httpx.Response:
    return answer(
        200,
        {
            "id": str(uuid.uuid4()),
            "workflow_id": str(WORKFLOW_ID),
            "workflow_version": 1,
            "organization_id": str(uuid.uuid4()),
            "status": status,
        },
    )


def test_wait_polls_with_doubling_pauses_until_the_run_settles() -> None:
    polls = [run_json("running"), run_json("running"), run_json("waiting_for_human")]
    effects, run = drive(FLOWS.wait(_api.get_run(WORKFLOW_ID, uuid.uuid4()), None), polls)
    assert kinds(effects) == ["Send", "Sleep", "Send", "Sleep", "Send"]
    assert [e.seconds for e in effects if isinstance(e, Sleep)] == [POLL_FIRST_S, 2 * POLL_FIRST_S]
    assert isinstance(run, Run) and run.settled and not run.finished


def test_wait_returns_the_run_as_it_is_when_time_is_up() -> None:
    effects, run = drive(
        FLOWS.wait(_api.get_run(WORKFLOW_ID, uuid.uuid4()), 0), [run_json("running")]
    )
    assert kinds(effects) == ["Send"] and run.status == "running"


def page(items: list[int], next_cursor: str | None) -> httpx.Response:
    return answer(200, {"data": items, "next_cursor": next_cursor, "prev_cursor": None})


def test_pages_follow_the_cursor_and_stop_on_a_repeated_one() -> None:
    asked: list[str | None] = []

    def page_call(after: str | None) -> Any:
        asked.append(after)
        return _api.list_workflows({}, after, None)

    answers = [page([], "a"), page([], "b"), page([], "b")]
    effects, _ = drive(FLOWS.pages(page_call, None), answers)
    assert asked == [None, "a", "b"]
    assert kinds(effects) == ["Send", "Emit", "Send", "Emit", "Send", "Emit"]
    assert all(isinstance(e.item, Page) for e in effects if isinstance(e, Emit))
    assert not any(isinstance(e, Close) for e in effects)


def lines(*items: str | Exception) -> Iterator[str]:
    """A body read line by line: each item a line, or the error raised on reaching it."""
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


@dataclass
class Cursor:
    last_event_id: int | None = None


def test_events_ask_again_from_the_last_event_after_a_quiet_spell_or_a_break() -> None:
    asked: list[int | None] = []

    def events_call(last: int | None) -> Any:
        asked.append(last)
        return _api.run_events(WORKFLOW_ID, uuid.uuid4(), last)

    quiet = lines("id: 1", "event: run.running", "data: {}", "", httpx.ReadTimeout("quiet"))
    cut = lines(
        ": keep-alive", "id: 2", "event: step.running", "data: {}", "", httpx.ReadError("cut")
    )
    last = lines("id: 3", "event: run.completed", "data: {}", "", "id: 4", "data: {}", "")
    answers = [answer(200), quiet, answer(200), cut, answer(200), last]
    cursor = Cursor()
    effects, _ = drive(FLOWS.events(cursor, events_call), answers)
    assert asked == [None, 1, 2] and cursor.last_event_id == 3
    assert [e.item.id for e in effects if isinstance(e, Emit)] == [1, 2, 3]
    # a quiet spell asks again at once; a break after a backoff
    between = [k for k in kinds(effects) if k in {"Send", "Close", "Sleep"}]
    assert between == ["Send", "Close", "Send", "Close", "Sleep", "Send", "Close"]


def test_events_broken_too_often_in_a_row_give_up() -> None:
    broken = [x for _ in range(4) for x in (answer(200), lines(httpx.ReadError("cut")))]
    with pytest.raises(TransportError):
        drive(
            FLOWS.events(Cursor(), lambda last: _api.run_events(WORKFLOW_ID, uuid.uuid4(), last)),
            broken,
        )
