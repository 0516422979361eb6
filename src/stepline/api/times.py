"""Times a request gives: aware, and within what UTC (the store's) can write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _in_utc(moment: datetime) -> datetime:
    # 0001-01-01T00:00+05:00 is a valid time, but not one that UTC (the store's) can write.
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of the range of times once in UTC (years 1 to 9999)") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A time with its offset, given back in UTC."""
