"""A workflow's table columns (`column_config`): their field paths, their problems, and the
values they pick out of a step's output (`mapped_output`).

A field path names a place in a JSON value. It is a first segment, then any number of
`.key` or `[...]` segments:

- a bare key: any characters but `.`, `[` and `]` (`result`, `output`, `0`);
- a list index in brackets: `[0]`, `[12]` (no sign, no spaces);
- a quoted key in brackets, a JSON string: `["a.b"]`, `["x[1]"]`.

`result.output`, `choices[0].message.content`, `[0].name` and `rows[2]["a.b"]` are paths;
`a..b`, `.a`, `a.`, `a[-1]`, `a[x]` and `a[0` are not. A key reads an object's member, an
index a list's item; anything else (a key of a list, an index past the end, a key the
object lacks) is missing, and a missing value is `None` (null) in `mapped_output`: every
column of the step is there, as a table row has every cell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from stepline.spec.models import ColumnSpec
from stepline.spec.reporting import suggest

Segment = str | int
"""A key (str) or a list index (int)."""

_BARE = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(0|[1-9][0-9]*)\]")
_QUOTED = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')


class FieldPathError(ValueError):
    """A field path that does not follow the syntax; the message says where and why."""


def parse_field_path(path: str) -> tuple[Segment, ...]:
    """The segments of `path`, or FieldPathError naming the first bad character."""
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        if path.startswith("[", position):
            position = _bracket(path, position, segments)
            continue
        if segments:
            if path[position] != ".":
                raise FieldPathError(_expected(path, position, "'.' or '['"))
            position += 1
        match = _BARE.match(path, position)
        if match is None:
            what = "a key" if segments else "a key or [index]"
            raise FieldPathError(_expected(path, position, what))
        segments.append(match.group())
        position = match.end()
    if not segments:
        raise FieldPathError("a field path names at least one key or index, e.g. result.output")
    return tuple(segments)


def _bracket(path: str, start: int, segments: list[Segment]) -> int:
    """Parse `[N]` or `["key"]` at `start`; return where the next segment begins."""
    index = _INDEX.match(path, start)
    if index is not None:
        segments.append(int(index.group(1)))
        return index.end()
    quoted = _QUOTED.match(path, start)
    if quoted is not None:
        try:
            segments.append(json.loads(f'"{quoted.group(1)}"'))
        except json.JSONDecodeError:
            raise FieldPathError(_expected(path, start, 'a JSON string key, as ["a.b"]')) from None
        return quoted.end()
    raise FieldPathError(_expected(path, start, 'a list index [0] or a quoted key ["a.b"]'))


def _expected(path: str, position: int, what: str) -> str:
    found = repr(path[position]) if position < len(path) else "the end"
    return f"expected {what} at character {position + 1} of {path!r}, found {found}"


_MISSING = object()


def pick(value: Any, segments: Sequence[Segment]) -> Any:
    """The value at `segments` in `value`; None where the path leads nowhere."""
    found = _walk(value, segments)
    return None if found is _MISSING else found


def _walk(value: Any, segments: Sequence[Segment]) -> Any:
    for segment in segments:
        if isinstance(segment, int) and isinstance(value, list):
            if segment >= len(value):
                return _MISSING
            value = value[segment]
        elif isinstance(segment, str) and isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            return _MISSING
    return value


def mapped_output(
    columns: Iterable[ColumnSpec] | None, node_id: str, output: Any
) -> dict[str, Any] | None:
    """{label: the value at fieldPath in `output`} for the columns naming `node_id`.

    None when no column names the node, or the step has no output (not run yet, failed).
    A path that leads nowhere gives None under its label. Paths are checked when the
    workflow is saved; one that still does not parse (an older definition) gives None too.
    """
    mine = [column for column in columns or () if column.step_id == node_id]
    if not mine or output is None:
        return None
    values: dict[str, Any] = {}
    for column in mine:
        try:
            segments = parse_field_path(column.field_path)
        except FieldPathError:
            values[column.label] = None
            continue
        values[column.label] = pick(output, segments)
    return values


def column_problems(
    columns: Sequence[tuple[int, ColumnSpec]], node_ids: Iterable[str]
) -> list[tuple[str, str, str]]:
    """Every problem of the columns as (JSON path, message, issue code): a stepId naming no
    node, a fieldPath off the syntax, an id used twice, two columns of one node under the
    same label (their values would share a key of mapped_output)."""
    known = set(node_ids)
    problems: list[tuple[str, str, str]] = []
    first_ids: dict[str, int] = {}
    first_labels: dict[tuple[str, str], int] = {}
    for index, column in columns:
        base = f"$.column_config[{index}]"
        if column.step_id not in known:
            hint = suggest(column.step_id, known)
            message = f"stepId {column.step_id!r} names no node of the workflow{hint}"
            problems.append((f"{base}.stepId", message, "unknown_node"))
        try:
            parse_field_path(column.field_path)
        except FieldPathError as exc:
            problems.append((f"{base}.fieldPath", str(exc), "field_path"))
        if column.id in first_ids:
            message = f"duplicate column id {column.id!r} (first used by $.column_config"
            problems.append((f"{base}.id", f"{message}[{first_ids[column.id]}])", "duplicate_id"))
        else:
            first_ids[column.id] = index
        label_key = (column.step_id, column.label)
        if label_key in first_labels:
            message = (
                f"label {column.label!r} is already used for step {column.step_id!r} by "
                f"$.column_config[{first_labels[label_key]}]; mapped_output is keyed by label"
            )
            problems.append((f"{base}.label", message, "duplicate_label"))
        else:
            first_labels[label_key] = index
    return problems
