"""Column types that behave the same on SQLite and PostgreSQL, and the values both store."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine

MAX_INT = 2**31 - 1
"""The largest value of an `sa.Integer` column on both databases (int4 on PostgreSQL)."""
MAX_BIGINT = 2**63 - 1
"""The largest value of an `sa.BigInteger` column (and of any SQLite integer)."""


def integer_range(column_type: TypeEngine[Any]) -> range:
    """The values an integer column of this type holds on both databases."""
    top = MAX_BIGINT if isinstance(column_type, sa.BigInteger) else MAX_INT
    return range(-top - 1, top + 1)


_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored in a text or JSON column of both databases, or None: the
    NUL character (U+0000), which PostgreSQL refuses, or a lone surrogate (U+D800 to U+DFFF),
    which is no Unicode character and has no UTF-8 form."""
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return None
    if found[0] == "\x00":
        return "contains the NUL character (U+0000), which cannot be stored"
    return f"contains a lone surrogate (U+{ord(found[0]):04X}), which is not Unicode text"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out timezone-aware in UTC on both databases.

    PostgreSQL stores `timestamp with time zone`; SQLite has no such type, so the value is
    stored as naive UTC text (SQLAlchemy's fixed-width ISO format, which sorts
    chronologically) and made aware again when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.DateTime())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _checked(value).astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def fast_bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """One function doing what this type's bind processing does, or None (use that).

        On SQLite: the value as SQLAlchemy's DATETIME stores it (`YYYY-MM-DD
        HH:MM:SS.ffffff`, naive UTC), without going through two processors and a format
        dict. `stepline.store.prepared` uses it on the hot path.
        """
        return _sqlite_utc_text if dialect.name == "sqlite" else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _checked(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None:
        # A naive time is ambiguous (local or UTC?): refuse it rather than guess.
        raise ValueError(
            f"naive datetime {value.isoformat()}: the store takes timezone-aware "
            "datetimes (use stepline.records.utcnow())"
        )
    return value


def _sqlite_utc_text(value: Any) -> str | None:
    if value is None:
        return None
    value = _checked(value)
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat of an aware time ends with +00:00; the stored text is the naive part.
    return value.isoformat(" ", "microseconds")[:26]


class JSONText:
    """A JSON column's value already serialized: `Prepared` statements bind `text` as is.

    For the hot path's nested models (a step's attempts...): serializing them once, when
    the write is submitted, both snapshots them and skips the dump-then-serialize of the
    JSON type. Only `stepline.store.prepared` understands it; anywhere else it fails to
    serialize rather than being stored as a JSON string.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JSONText) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"JSONText({self.text!r})"


class SQLiteJSONText(sqlite.JSON):
    """SQLite's JSON type, declared TEXT (`_sqlite_json_text` below).

    A column declared JSON gets SQLite's NUMERIC affinity, which stores a document that
    is a bare number as an INTEGER or REAL: an integer past 64 bits came back as a float,
    and SQLite's reading of some floats loses their last digit. TEXT keeps the text.
    """

    cache_ok = True


@compiles(SQLiteJSONText, "sqlite")
def _sqlite_json_text(type_: SQLiteJSONText, compiler: Any, **kw: Any) -> str:
    return "TEXT"


def json_type() -> TypeEngine[Any]:
    """JSON as TEXT on SQLite, JSONB on PostgreSQL; Python None is stored as SQL NULL."""
    return (
        sa.JSON(none_as_null=True)
        .with_variant(SQLiteJSONText(none_as_null=True), "sqlite")
        .with_variant(JSONB(none_as_null=True), "postgresql")
    )
