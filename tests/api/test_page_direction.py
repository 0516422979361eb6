"""Every cursor-paged list refuses a page asked for in both directions, naming the field."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from support.server import ServeProcess

CURSOR = "x"  # never read: the direction is checked first


@pytest.fixture
def http(api_server: ServeProcess, make_key: Callable[..., str]) -> Iterator[httpx.Client]:
    key = make_key(f"pages-{uuid.uuid4().hex[:8]}")
    with httpx.Client(
        base_url=api_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/v1/workflows", "/v1/files", "/v1/collections", "/v1/keys", "/v1/reviews"]
)
def test_after_and_before_together_are_a_422_naming_before(http: httpx.Client, path: str) -> None:
    answer = http.get(path, params={"after": CURSOR, "before": CURSOR})
    assert answer.status_code == 422, answer.text
    details = answer.json()["error"]["details"]
    assert details == [
        {"field": "query.before", "message": "give at most one of after and before"}
    ], details
