"""Record ids as a user types them: a whole UUID, or a unique prefix of one.

`runs list` prints whole ids; any command that takes a run id also takes the first
characters of one (`3fa8`, with or without dashes) when only one run's id starts so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

from stepline.cli.failures import fail

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,32}")
SHOWN_CANDIDATES = 10
"""How many matching ids an ambiguous prefix lists at most."""


def parse_uuid(value: str, what: str) -> UUID:
    """`value` as a UUID, else exit 2 saying which value is not one."""
    try:
        return UUID(value)
    except ValueError:
        fail(f"{what} {value!r} is not a UUID")


def as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def id_prefix(value: str, what: str) -> str:
    """The hex digits a partial id starts with (dashes dropped, lower case)."""
    digits = value.strip().lower().replace("-", "")
    if not _HEX_PREFIX.fullmatch(digits):
        fail(f"{what} {value!r} is not a UUID, nor the start of one")
    return digits


def starts_with(record_id: UUID, prefix: str) -> bool:
    return record_id.hex.startswith(prefix)


def uuid_bounds(prefix: str) -> tuple[UUID, UUID]:
    """The smallest and largest UUID that start with `prefix` (hex digits)."""
    return UUID(prefix.ljust(32, "0")), UUID(prefix.ljust(32, "f"))


def choose(value: str, candidates: Sequence[UUID], what: str, where: str = "") -> UUID:
    """The one id `value` names among `candidates`, else exit 2: none, or which ones."""
    unique = sorted(set(candidates))
    if len(unique) == 1:
        return unique[0]
    if not unique:
        fail(f"no {what} with id {value}{where}")
    listed = "".join(f"\n  {candidate}" for candidate in unique[:SHOWN_CANDIDATES])
    more = "\n  ..." if len(unique) > SHOWN_CANDIDATES else ""
    fail(
        f"{what} id {value!r} is ambiguous: it starts the ids of {len(unique)}"
        f"{'+' if more else ''} {what}s{where}; type more of it:{listed}{more}"
    )
