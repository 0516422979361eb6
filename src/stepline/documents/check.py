"""Is a value a document stepline can store exactly, and read back? One walk says.

A document is exact JSON within its limits: objects with string keys, arrays, strings,
finite numbers, integers of at most `MAX_INT_DIGITS` digits, booleans and null, nested
at most `max_depth` levels and at most `max_bytes` long as compact UTF-8 JSON. Strings
must be valid Unicode without NUL (PostgreSQL stores neither a lone surrogate nor
`\\u0000`). The walk is iterative, so no depth makes it recurse, and it stops as soon as
the size it has seen passes the limit, so a document whose parts are shared (YAML
aliases) cannot make it expand without end.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from typing import Any

import pydantic_core

from stepline.documents.limits import (
    DEFINITION_SETTING,
    DEPTH_SETTING,
    INPUTS_SETTING,
    MAX_INT_DIGITS,
    OUTPUT_SETTING,
    DocumentLimits,
)
from stepline.errors import Detail, InvalidRequest, TooLarge

_INT_BOUND = 10**MAX_INT_DIGITS
_FLOAT_TEXT_MAX = 24
"""The longest a finite float's JSON text gets (`-2.2250738585072014e-308`)."""
_ESCAPED_MAX = 6
"""The most bytes one character of a string takes in JSON (`\\u001f`)."""
_END: Any = object()


class DocumentError(InvalidRequest, ValueError):
    """A document breaks a limit, or is not exact JSON; says where and which limit."""

    def __init__(
        self, reason: str, *, path: str = "$", too_large: bool = False, too_deep: bool = False
    ) -> None:
        super().__init__(f"{path}: {reason}" if path != "$" else reason)
        self.reason = reason
        self.path = path
        """Where, as a JSON path from the document's root: `$`, `$.items[3].name`."""
        self.too_large = too_large
        """A size limit (answered 413) rather than a shape or value (422)."""
        self.too_deep = too_deep
        """The depth limit."""
        if too_large:
            self.status, self.code = TooLarge.status, TooLarge.code

    def at(self, field: str) -> InvalidRequest:
        """This error as a request's: TooLarge (a size limit) or InvalidRequest (a depth
        limit, or not exact JSON), located at `field` (`body`, `body.inputs`...) + its path."""
        where = field + self.path.removeprefix("$")
        kind = TooLarge if self.too_large else InvalidRequest
        return kind(f"{where}: {self.reason}", details=[Detail(where, self.reason)])


def too_deep(max_depth: int, path: str = "$", where: str = "") -> DocumentError:
    """The error of a document nested deeper than `max_depth` (`where`: in its text)."""
    return DocumentError(
        f"nested deeper than {max_depth} levels of arrays and objects "
        f"(the limit, {DEPTH_SETTING}){where}",
        path=path,
        too_deep=True,
    )


class LongInteger:
    """An integer too long to keep exactly, as a JSON reader met it (its digits only)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def check_definition(definition: Any, limits: DocumentLimits, path: str = "$") -> None:
    check_document(
        definition,
        max_depth=limits.max_depth,
        max_bytes=limits.max_definition_bytes,
        size_setting=DEFINITION_SETTING,
        path=path,
    )


def check_inputs(inputs: Any, limits: DocumentLimits, path: str = "$") -> None:
    check_document(
        inputs,
        max_depth=limits.max_depth,
        max_bytes=limits.max_inputs_bytes,
        size_setting=INPUTS_SETTING,
        path=path,
    )


def check_output(output: Any, limits: DocumentLimits, path: str = "$") -> None:
    check_document(
        output,
        max_depth=limits.max_depth,
        max_bytes=limits.max_output_bytes,
        size_setting=OUTPUT_SETTING,
        path=path,
    )


def check_document(
    value: Any,
    *,
    max_depth: int,
    max_bytes: int | None = None,
    size_setting: str = "",
    path: str = "$",
) -> None:
    """Raise DocumentError unless `value` is exact JSON within the limits."""
    high = _scan(value, max_depth, max_bytes)
    if high is None:
        # Something is wrong: walk again, slower, to say what and where.
        _Explain(max_depth, max_bytes, size_setting, path).run(value)
        return
    if max_bytes is None or high <= max_bytes:
        return
    # Near the limit the bound is not enough: measure the text itself.
    size = len(pydantic_core.to_json(value))
    if size > max_bytes:
        raise _too_large(size, max_bytes, size_setting, path)


def _too_large(size: int, limit: int, setting: str, path: str) -> DocumentError:
    where = f" ({setting})" if setting else ""
    return DocumentError(
        f"{size:,} bytes of JSON or more, over the limit of {limit:,}{where}",
        path=path,
        too_large=True,
    )


def _scan(root: Any, max_depth: int, max_bytes: int | None) -> int | None:
    """The quick pass: None if anything is wrong, else a bound of the JSON text's size.

    It adds up `low`, a size the text is never under (past `max_bytes`, the document is
    too large), and `high`, one it is never over (under `max_bytes`, no need to serialize
    the document to know). The hot path of every step's output: kept flat and inlined.
    """
    budget = sys.maxsize if max_bytes is None else max_bytes
    low = high = 0
    stack: list[Iterator[Any]] = [iter((root,))]
    while stack:
        for value in stack[-1]:
            kind = type(value)
            if kind is str:
                if "\x00" in value or (not value.isascii() and not _is_unicode(value)):
                    return None
                low += len(value) + 2
                high += _ESCAPED_MAX * len(value) + 2
            elif kind is dict:
                if len(stack) > max_depth:
                    return None
                for key in value:
                    if type(key) is not str or "\x00" in key:
                        return None
                    if not key.isascii() and not _is_unicode(key):
                        return None
                    low += len(key) + 3
                    high += _ESCAPED_MAX * len(key) + 3
                low += len(value) + 1
                high += len(value) + 2
                stack.append(iter(value.values()))
                break
            elif kind is list or kind is tuple:
                if len(stack) > max_depth:
                    return None
                low += len(value) + 1
                high += len(value) + 2
                stack.append(iter(value))
                break
            elif kind is int:
                bits = value.bit_length()
                if bits > 64 and not -_INT_BOUND < value < _INT_BOUND:
                    return None
                low += 1
                high += bits * 3 // 10 + 2
            elif kind is float:
                if value - value != 0.0:  # NaN or an infinity
                    return None
                low += 1
                high += _FLOAT_TEXT_MAX
            elif value is None or kind is bool:
                low += 4
                high += 5
            else:  # a subclass (an enum...) or not JSON: the careful walk decides
                return None
        else:
            stack.pop()
            continue
        if low > budget:
            return None
    return None if low > budget else high


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Explain:
    """The careful pass, with the path of every value: raises on the first problem.

    The same rules as `_scan`, one value at a time, on its own stack (no recursion).
    """

    def __init__(self, max_depth: int, max_bytes: int | None, setting: str, root: str) -> None:
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self.setting = setting
        self.root = root
        self.low = 0
        self.children: list[Iterator[tuple[Any, Any]]] = []
        self.objects: list[bool] = []
        self.keys: list[Any] = []

    def run(self, value: Any) -> None:
        limit = self.max_bytes
        while True:
            self._visit(value)
            if limit is not None and self.low > limit:
                raise _too_large(self.low, limit, self.setting, self._path())
            value = self._next()
            if value is _END:
                return

    def _next(self) -> Any:
        """The next value in document order, or _END; keeps `keys` at its path."""
        children = self.children
        while children:
            item = next(children[-1], _END)
            if item is _END:
                children.pop()
                self.objects.pop()
                self.keys.pop()
                continue
            key, value = item
            self.keys[-1] = key
            if self.objects[-1]:
                if not isinstance(key, str):
                    raise self._error(
                        f"an object key must be a string, not {type(key).__name__} {key!r}"
                    )
                self._check_text(key, "key")
                self.low += len(key) + 3  # "key":
            return value
        return _END

    def _visit(self, value: Any) -> None:
        if isinstance(value, str):
            self._check_text(value, "string")
            self.low += len(value) + 2
        elif isinstance(value, dict | list | tuple):
            self._open(value)
        elif isinstance(value, bool) or value is None:
            self.low += 4
        elif isinstance(value, int):
            if not -_INT_BOUND < value < _INT_BOUND:
                raise self._error(_long_integer(None))
            self.low += 1
        elif isinstance(value, float):
            self._check_float(value)
            self.low += 1
        elif isinstance(value, LongInteger):
            raise self._error(_long_integer(value.digits))
        else:
            raise self._error(f"a {type(value).__name__} is not a JSON value")

    def _open(self, container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> None:
        if len(self.children) >= self.max_depth:
            raise too_deep(self.max_depth, self._path())
        items: Iterator[tuple[Any, Any]]
        if isinstance(container, dict):
            items = iter(container.items())
        else:
            items = enumerate(container)
        self.children.append(items)
        self.objects.append(isinstance(container, dict))
        self.keys.append(None)
        self.low += 1 + len(container)  # brackets and commas

    def _check_float(self, value: float) -> None:
        if math.isnan(value):
            raise self._error("NaN is not a JSON number")
        if math.isinf(value):
            sign = "-" if value < 0 else ""
            raise self._error(
                f"{sign}Infinity is not a JSON number (a literal such as 1e999, too large "
                "for a 64-bit float, reads as Infinity)"
            )

    def _check_text(self, text: str, what: str) -> None:
        if "\x00" in text:
            raise self._error(f"a {what} holding NUL (\\u0000), which stepline does not store")
        if not _is_unicode(text):
            raise self._error(
                f"a {what} that is not valid Unicode (a lone surrogate such as \\ud800)"
            )

    def _error(self, reason: str) -> DocumentError:
        return DocumentError(reason, path=self._path())

    def _path(self) -> str:
        # A container just opened has no key yet (None): its path is its parent's.
        steps = zip(self.keys, self.objects, strict=True)
        return json_path(self.root, [(key, member) for key, member in steps if key is not None])


def json_path(root: str, steps: list[tuple[Any, bool]]) -> str:
    """`$` and [("items", True), (3, False), ("a b", True)] -> `$.items[3]["a b"]`.

    Each step is a key and whether it names an object's member (else an array's index).
    """
    path = root
    for key, member in steps:
        if not member:
            path += f"[{key}]"
        elif isinstance(key, str) and key.isidentifier():
            path += f".{key}"
        else:
            path += f"[{json.dumps(str(key))}]"
    return path


def _long_integer(digits: int | None) -> str:
    count = f"{digits:,}" if digits is not None else f"more than {MAX_INT_DIGITS:,}"
    return (
        f"an integer of {count} digits: integers are kept exactly up to {MAX_INT_DIGITS:,} digits "
        "(the bound Python sets on reading and writing integers as text)"
    )
