"""Keyset pagination: pages that follow a stable sort key, never an OFFSET.

A page is read with one indexed range query of `limit + 1` rows, so reading page 1,000 of
a run costs what page 1 does and no list ever loads a table into memory. A cursor is the
sort key of the row it points at, tagged with the listing it belongs to, base64url-encoded
JSON; it is opaque to clients and checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

import sqlalchemy as sa

from stepline.errors import InvalidRequest
from stepline.store.types import integer_range, text_problem

T = TypeVar("T")

KeyType = Literal["int", "str", "uuid", "datetime"]

MAX_PAGE_SIZE = 1000


class InvalidCursor(InvalidRequest, ValueError):
    """A cursor that is malformed or belongs to another listing."""


@dataclass(frozen=True, slots=True)
class Ordering:
    """A listing's sort key: its name (checked in cursors), columns and their value types."""

    name: str
    columns: tuple[sa.ColumnElement[Any], ...]
    types: tuple[KeyType, ...]
    descending: bool = False

    def encode(self, values: Sequence[Any]) -> str:
        plain = [_plain(value) for value in values]
        raw = json.dumps({"o": self.name, "k": plain}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The sort key a cursor holds; InvalidCursor if it is not one of this listing's."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if not isinstance(payload, dict) or payload.get("o") != self.name:
                raise ValueError("it belongs to another listing")
            values = payload["k"]
            if not isinstance(values, list) or len(values) != len(self.types):
                raise ValueError("wrong number of key values")
            triples = zip(values, self.types, self.columns, strict=True)
            return tuple(_typed(value, kind, column) for value, kind, column in triples)
        except (
            ValueError,
            KeyError,
            TypeError,
            OverflowError,
            binascii.Error,
            UnicodeDecodeError,
        ) as exc:
            raise InvalidCursor(f"not a valid cursor for {self.name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing and the cursors to its neighbours (None at either end)."""

    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None


def read_page(
    conn: sa.Connection,
    query: sa.Select[Any],
    ordering: Ordering,
    *,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    params: dict[str, Any] | None = None,
    key_of: Callable[[Any], Sequence[Any]],
    item_of: Callable[[Any], T],
) -> Page[T]:
    """Read the page of `query` (already filtered) after or before a cursor.

    `key_of(row)` gives a row's sort key values; `item_of(row)` turns it into an item.
    """
    check_page_request(limit, after, before)
    backwards = before is not None
    cursor = before if backwards else after
    columns = sa.tuple_(*ordering.columns)
    if cursor is not None:
        key = ordering.decode(cursor)
        bound = sa.tuple_(
            *(
                sa.literal(value, type_=column.type)
                for value, column in zip(key, ordering.columns, strict=True)
            )
        )
        # Rows that sort after the cursor; "before" reads the listing the other way round.
        if reads_greater(ordering, backwards):
            query = query.where(columns > bound)
        else:
            query = query.where(columns < bound)
    descending = ordering.descending != backwards
    order = [column.desc() if descending else column.asc() for column in ordering.columns]
    rows = list(conn.execute(query.order_by(*order).limit(limit + 1), params or {}).mappings())
    return page_of_rows(
        rows,
        ordering,
        limit=limit,
        cursor=cursor,
        backwards=backwards,
        key_of=key_of,
        item_of=item_of,
    )


def check_page_request(limit: int, after: str | None, before: str | None) -> None:
    """ValueError unless 1 <= limit <= MAX_PAGE_SIZE and at most one cursor is given."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if after is not None and before is not None:
        raise ValueError("give at most one of after and before")


def reads_greater(ordering: Ordering, backwards: bool) -> bool:
    """Whether the page's rows sort above the cursor's key (else below it); the page is
    read in descending order when `ordering.descending != backwards`."""
    return (not ordering.descending) != backwards


def page_of_rows(
    rows: list[Any],
    ordering: Ordering,
    *,
    limit: int,
    cursor: str | None,
    backwards: bool,
    key_of: Callable[[Any], Sequence[Any]],
    item_of: Callable[[Any], T],
) -> Page[T]:
    """The page of `limit + 1` rows read from the cursor (in reading order)."""
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    has_next = cursor is not None if backwards else more
    has_prev = more if backwards else cursor is not None
    return Page(
        items=[item_of(row) for row in rows],
        next_cursor=ordering.encode(key_of(rows[-1])) if rows and has_next else None,
        prev_cursor=ordering.encode(key_of(rows[0])) if rows and has_prev else None,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _typed(value: Any, kind: KeyType, column: sa.ColumnElement[Any]) -> Any:
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if value not in integer_range(column.type):
            raise ValueError(f"integer {value} is out of range")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"the key {problem}")
    if kind == "uuid":
        return UUID(value)
    if kind == "datetime":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("cursor time has no timezone")
        return parsed.astimezone(UTC)  # OverflowError for a time out of UTC's range
    return value
