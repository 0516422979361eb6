"""Reading JSON text as a document, refused before anything recurses into it too deep.

pydantic's JSON parser (Rust) stops at 200 levels, cheaply, whatever the text holds
(Python's own recurses on the C stack up to its recursion limit, near a thousand, then
fails with a RecursionError); `MAX_DEPTH_CEILING` keeps every configured limit under
those 200. The value it reads is then walked without recursion (`check_document`) for the
limit itself, and for what JSON text may hold but stepline cannot keep exactly: NaN,
Infinity, numbers that overflow, integers too long, NUL and lone surrogates.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core

from stepline.documents.check import DocumentError, check_document, too_deep
from stepline.documents.limits import MAX_INT_DIGITS

_POSITION = re.compile(r" at line (\d+) column (\d+)$")


def parse_json(text: str | bytes, *, max_depth: int, path: str = "$") -> Any:
    """The document in `text`, refused (DocumentError) when too deep or not exact JSON.

    Text that is not JSON at all raises `json.JSONDecodeError`, as `json.loads` does.
    """
    try:
        value = pydantic_core.from_json(text)
    except ValueError as exc:
        value = _after_parse_error(text, str(exc), max_depth, path)
    check_document(value, max_depth=max_depth, path=path)
    return value


def _after_parse_error(text: str | bytes, message: str, max_depth: int, path: str) -> Any:
    """Explain why pydantic's parser refused `text`, or read it the standard way.

    Its parser refuses some JSON that Python's reads (an escaped lone surrogate, say):
    that value goes on to be walked, which says where the problem is.
    """
    where = _where(message)
    if message.startswith("recursion limit exceeded"):
        raise too_deep(max_depth, path, where)
    if message.startswith("number out of range"):
        raise DocumentError(
            f"a number too large to keep exactly{where}: integers are kept exactly up to "
            f"{MAX_INT_DIGITS:,} digits, and other numbers must fit a 64-bit float",
            path=path,
        )
    try:
        return json.loads(text)  # not JSON: its JSONDecodeError, with the position
    except RecursionError:
        raise too_deep(max_depth, path) from None


def _where(message: str) -> str:
    found = _POSITION.search(message)
    return f" (at line {found[1]}, column {found[2]})" if found else ""
