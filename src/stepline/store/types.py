"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


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
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None:
            # A naive time is ambiguous (local or UTC?): refuse it rather than guess.
            raise ValueError(
                f"naive datetime {value.isoformat()}: the store takes timezone-aware "
                "datetimes (use stepline.records.utcnow())"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is stored as SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
