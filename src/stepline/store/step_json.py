"""Steps as JSON text built by the database itself: the API's fast read path.

The model path (row, SQLAlchemy's result processors, `StepRecord.model_validate`, then
`pydantic_core.to_json`) costs about 100 us a step in Python. Here one SQL expression per
step writes its JSON document inside the database, so a page or a download chunk comes
back as one string per step and Python only joins them; on SQLite that work runs in
`sqlite3_step`, outside the GIL, and the statements go straight to the driver (`sqlite_*`
below), without SQLAlchemy.

The document is the one `to_json(StepRecord)` gives, field for field and in the model's
field order (`include_io=False` leaves out `IO_COLUMNS`, as the API's `exclude` does):

- UUIDs in their dashed form; SQLite stores them as 32 hex digits (`sa.Uuid`).
- Timestamps as pydantic writes an aware UTC datetime: `2026-01-02T03:04:05.123456Z`, and
  without the fraction when it is zero (`2026-01-02T03:04:05Z`). SQLite stores them as
  naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff` (`UTCDateTime`); PostgreSQL's are formatted
  with `to_char` in UTC.
- Strings escaped by the database's own JSON quoting (`json_quote`, `to_json`), which
  escapes what pydantic does (quote, backslash, control characters, `\\u00XX` in
  lower-case hex) and nothing else.
- JSON columns spliced in as stored, without being parsed: SQLite keeps the text pydantic
  wrote; PostgreSQL renders its jsonb (the same values, in its own key order and spacing).
- Booleans as true/false, NULL as null.

JSON columns are TEXT on SQLite (`types.SQLiteJSONText`): a document that is a bare
number is stored as the text pydantic wrote, like any other (before migration 0005 they
had NUMERIC affinity, which stored such a number as an INTEGER or REAL; that migration
turned those back into text).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

import sqlalchemy as sa

from stepline.records import INPUT_JSON_HANDLE, OUTPUT_JSON_HANDLE, RunStatus
from stepline.store.paging import (
    Ordering,
    Page,
    check_page_request,
    page_of_rows,
    reads_greater,
)
from stepline.store.tables import steps
from stepline.store.types import UTCDateTime

Kind = Literal["uuid", "datetime", "json", "int", "bool", "str"]

IO_COLUMNS = frozenset({"inputs", "outputs", "handle_inputs", "handle_outputs"})
"""What `include_io=False` leaves out of a step (its potentially large payloads)."""

STEPS_ORDER = Ordering("steps_in_order", (steps.c.order_key, steps.c.step_id), ("str", "str"))
"""The steps' listing order (order_key, step_id: execution order, `stepline.step_order`),
and the tag of their cursors (a cursor of the former order, by seq, is refused)."""

STEP_FILTERS = ("status", "node_id", "node_type", "loop_id", "iteration")
"""The columns a step listing filters on (equality, ANDed)."""

DOC = "doc"


def column_kind(column: sa.Column[Any]) -> Kind:
    """How a steps column is written in JSON."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "datetime"
    if isinstance(kind, sa.JSON):
        return "json"
    if isinstance(kind, sa.Uuid):
        return "uuid"
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.String):
        return "str"
    raise TypeError(f"no JSON form for column {column.name} of type {kind!r}")


def _sqlite_value(ref: str, kind: Kind, nullable: bool) -> tuple[str, list[str]]:
    """A printf() fragment and its arguments writing the column's JSON value."""
    if kind == "str":
        return "%s", [f"json_quote({ref})"]  # json_quote(NULL) is 'null'
    if kind == "bool":
        return "%s", [f"CASE {ref} WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE 'null' END"]
    if kind == "json":
        return "%s", [f"coalesce({ref}, 'null')" if nullable else ref]
    if kind == "int":
        return "%s", [f"coalesce({ref}, 'null')" if nullable else ref]
    if kind == "uuid":
        pieces = [(1, 8), (9, 4), (13, 4), (17, 4), (21, 12)]
        if not nullable:
            return '"%s-%s-%s-%s-%s"', [f"substr({ref}, {a}, {n})" for a, n in pieces]
        dashed = " || '-' || ".join(f"substr({ref}, {a}, {n})" for a, n in pieces)
        return "%s", [f"CASE WHEN {ref} IS NULL THEN 'null' ELSE '\"' || {dashed} || '\"' END"]
    # datetime: the stored text has a fixed width, so '.000000' can only be its fraction.
    text = f"replace(replace({ref}, ' ', 'T'), '.000000', '')"
    if not nullable:
        return '"%sZ"', [text]
    return "%s", [f"CASE WHEN {ref} IS NULL THEN 'null' ELSE '\"' || {text} || 'Z\"' END"]


# The WHERE of every read fixes these: written from parameters (:run_json, :org_json,
# the quoted dashed ids), not formatted for each row. The workflow's id usually is the
# run's: given as :wf (stored form) and :wf_json, it too is written from them when equal.
_SQLITE_FIXED = {"run_id": ":run_json", "organization_id": ":org_json"}
_SQLITE_LIKELY = {"workflow_id": (":wf", ":wf_json")}
_MIN_GROUP = 3
# Nullable, but set in most steps that ran: not worth grouping.
_OFTEN_SET = frozenset(
    {
        "started_at",
        "completed_at",
        "duration_ms",
        "inputs",
        "outputs",
        "handle_inputs",
        "handle_outputs",
    }
)
# A step whose kind records no handles shows its JSON inputs and outputs under seed 004's
# JSON handles (as `StepRecord`'s serializers do): each handle column and its source.
_SHOWN_HANDLES = {
    "handle_inputs": ("inputs", INPUT_JSON_HANDLE),
    "handle_outputs": ("outputs", OUTPUT_JSON_HANDLE),
}


def _json_handle_prefix(handle: str) -> str:
    return '{"' + handle + '":{"type":"json","data":'


def _sqlite_column(column: sa.Column[Any]) -> tuple[str, list[str]]:
    ref = f'"steps"."{column.name}"'
    if column.name in _SQLITE_FIXED:
        return '"%s"', [_SQLITE_FIXED[column.name]]
    if column.name in _SHOWN_HANDLES:
        source, handle = _SHOWN_HANDLES[column.name]
        shown = f"'{_json_handle_prefix(handle)}' || \"steps\".\"{source}\" || '}}}}'"
        return "%s", [f"coalesce({ref}, {shown}, 'null')"]
    fragment, args = _sqlite_value(ref, column_kind(column), bool(column.nullable))
    if column.name in _SQLITE_LIKELY:
        stored, written = _SQLITE_LIKELY[column.name]
        formatted = f"printf('{fragment}', {', '.join(args)})"
        return "%s", [
            f"CASE {ref} WHEN {stored} THEN '\"' || {written} || '\"' ELSE {formatted} END"
        ]
    return fragment, args


def _groupable(column: sa.Column[Any]) -> bool:
    return bool(column.nullable) and column.name not in (*_SQLITE_FIXED, *_OFTEN_SET)


def _sqlite_document(columns: list[sa.Column[Any]]) -> str:
    """One printf() (each `||` would copy the whole string so far); a run of nullable
    columns, all NULL in most steps (the error's, the loop's, the review's), is written
    as one constant when they all are."""
    template: list[str] = []
    args: list[str] = []
    i = 0
    while i < len(columns):
        j = i
        while j < len(columns) and _groupable(columns[j]):
            j += 1
        group = columns[i:j] if j - i >= _MIN_GROUP else columns[i : i + 1]
        keys = [f'"{column.name}":' for column in group]
        parts = [_sqlite_column(column) for column in group]
        lead = "{" if i == 0 else ","
        if len(group) == 1:
            template.append(lead + keys[0] + parts[0][0])
            args += parts[0][1]
        else:
            nulls = ",".join(f"{key}null" for key in keys)
            inner = ",".join(key + fragment for key, (fragment, _) in zip(keys, parts, strict=True))
            inner_args = ", ".join(arg for _, values in parts for arg in values)
            all_null = " AND ".join(f'"steps"."{column.name}" IS NULL' for column in group)
            template.append(lead + "%s")
            args.append(
                f"CASE WHEN {all_null} THEN '{nulls}' ELSE printf('{inner}', {inner_args}) END"
            )
        i += len(group)
    return f"printf('{''.join(template)}}}', {', '.join(args)})"


def _postgres_value(ref: str, kind: Kind, nullable: bool) -> str:
    if kind == "bool":
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' ELSE 'null' END"
    if kind == "str":
        value = f"to_json({ref})::text"
    elif kind == "uuid":
        value = f"'\"' || {ref}::text || '\"'"
    elif kind == "datetime":
        value = (
            f"'\"' || replace(to_char({ref} AT TIME ZONE 'UTC', "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z\"'"
        )
    else:  # int, json
        value = f"{ref}::text"
    return f"coalesce({value}, 'null')" if nullable else value


def _columns(include_io: bool) -> list[sa.Column[Any]]:
    return [c for c in steps.c if include_io or c.name not in IO_COLUMNS]


@lru_cache
def document_sql(dialect: str, *, include_io: bool) -> str:
    """The SQL expression of a step's JSON document (a row of `steps`)."""
    columns = _columns(include_io)
    if dialect == "sqlite":
        return _sqlite_document(columns)
    parts: list[str] = []
    for i, column in enumerate(columns):
        ref = f'"steps"."{column.name}"'
        key = ("{" if i == 0 else ",") + f'"{column.name}":'
        value = _postgres_value(ref, column_kind(column), bool(column.nullable))
        if column.name in _SHOWN_HANDLES:
            source, handle = _SHOWN_HANDLES[column.name]
            shown = f"'{_json_handle_prefix(handle)}' || \"steps\".\"{source}\"::text || '}}}}'"
            value = f"coalesce({ref}::text, {shown}, 'null')"
        parts += [f"'{key}'", value]
    parts.append("'}'")
    return " || ".join(parts)


@lru_cache
def documents_select(dialect: str, *, include_io: bool) -> sa.Select[Any]:
    """SELECT doc, order_key, step_id FROM steps (add WHERE, ORDER BY, LIMIT)."""
    doc = sa.literal_column(document_sql(dialect, include_io=include_io), sa.Text)
    return sa.select(doc.label(DOC), steps.c.order_key, steps.c.step_id).select_from(steps)


def step_key(row: Any) -> tuple[Any, ...]:
    """The sort key of a `documents_select` row."""
    return row["order_key"], row["step_id"]


def document_of(row: Any) -> str:
    return str(row[DOC])


# --- SQLite, on the driver's connection -----------------------------------------------------
#
# sqlite3 releases the GIL for each step of a statement and takes it back for each row it
# returns; with the event loop and another reader wanting the GIL too, every one of those
# hand-offs can wait (up to the 5 ms switch interval), so a page read row by row costs
# several times its SQL. Each read here is therefore one statement returning one row: the
# run's head (a JSON array) and the documents joined by group_concat with RS (\x1e, which
# valid JSON text never holds raw), with their sort keys (a JSON array, in the same order)
# to cut cursors from. One statement is also one snapshot, without BEGIN.

_RS = "\x1e"

HeadRow = tuple[UUID, UUID | None, int, RunStatus]
"""A run's workflow_id, workspace_id, workflow_version and status."""

_SQLITE_RUN_HEAD = (
    "SELECT json_array(workflow_id, workspace_id, workflow_version, status) FROM runs "
    "WHERE id = :run AND organization_id = :org"
)


def _head_of(text: str | None) -> HeadRow | None:
    if text is None:
        return None
    workflow_id, workspace_id, version, status = json.loads(text)
    return (
        UUID(workflow_id),
        None if workspace_id is None else UUID(workspace_id),
        int(version),
        RunStatus(status),
    )


def sqlite_run_head(
    conn: sqlite3.Connection, organization_id: UUID, run_id: UUID
) -> HeadRow | None:
    """The run's head, if the organization has that run."""
    row = conn.execute(_SQLITE_RUN_HEAD, {"run": run_id.hex, "org": organization_id.hex}).fetchone()
    return None if row is None else _head_of(row[0])


@lru_cache(maxsize=256)
def _sqlite_steps_sql(
    include_io: bool, filters: tuple[str, ...], bound: str, descending: bool
) -> str:
    """One row: the run's head, the documents (RS-joined), their keys. Named parameters:
    run, org (stored ids), run_json, org_json, wf, wf_json (see `_SQLITE_FIXED`), one per
    filter (f_<column>), b_key and b_step_id with a bound, limit."""
    where = ["run_id = :run", "organization_id = :org"]
    where += [f'"{name}" = :f_{name}' for name in filters]
    if bound:
        where.append(f"(order_key, step_id) {bound} (:b_key, :b_step_id)")
    order = " DESC" if descending else ""
    page = (
        f"SELECT {document_sql('sqlite', include_io=include_io)} AS doc, order_key, step_id "
        f"FROM steps WHERE {' AND '.join(where)} "
        f"ORDER BY order_key{order}, step_id{order} LIMIT :limit"
    )
    head = _SQLITE_RUN_HEAD.replace(
        "id = ? AND organization_id = ?", "id = :run AND organization_id = :org"
    )
    return (
        f"SELECT ({head}), group_concat(doc, char(30)), "
        f"json_group_array(json_array(order_key, step_id)) FROM ({page})"
    )


def _sqlite_read(
    conn: sqlite3.Connection,
    run_id: UUID,
    organization_id: UUID,
    filters: dict[str, Any],
    *,
    workflow_id: UUID | None,
    include_io: bool,
    bound: tuple[str, Sequence[Any]] | None,
    descending: bool,
    limit: int,
) -> tuple[HeadRow | None, list[tuple[tuple[Any, ...], str]]]:
    """The run's head and up to `limit` (key, document) pairs in the listing's order;
    `workflow_id`: the steps' likely workflow (None: unknown)."""
    params: dict[str, Any] = {
        "run": run_id.hex,
        "org": organization_id.hex,
        "run_json": str(run_id),
        "org_json": str(organization_id),
        "wf": None if workflow_id is None else workflow_id.hex,
        "wf_json": None if workflow_id is None else str(workflow_id),
        "limit": limit,
    }
    for name, value in filters.items():
        params[f"f_{name}"] = value
    if bound is not None:
        params["b_key"], params["b_step_id"] = bound[1]
    sql = _sqlite_steps_sql(include_io, tuple(filters), bound[0] if bound else "", descending)
    head, text, keys_json = conn.execute(sql, params).fetchone()
    keys = [(key, step_id) for key, step_id in json.loads(keys_json)]
    if not keys:
        return _head_of(head), []
    rows = list(zip(keys, text.split(_RS), strict=True))
    # group_concat follows the subquery's order (how SQLite runs it); should it ever not,
    # the keys came along in the same order, so sort by them.
    if keys != sorted(keys, reverse=descending):
        rows.sort(key=lambda row: row[0], reverse=descending)
    return _head_of(head), rows


def sqlite_page(
    conn: sqlite3.Connection,
    run_id: UUID,
    organization_id: UUID,
    filters: dict[str, Any],
    *,
    workflow_id: UUID | None,
    include_io: bool,
    limit: int,
    after: str | None,
    before: str | None,
) -> tuple[HeadRow | None, Page[str]]:
    """The run's head and a page of its step documents (`read_page`'s rules)."""
    check_page_request(limit, after, before)
    backwards = before is not None
    cursor = before if backwards else after
    bound = None
    if cursor is not None:
        bound = (">" if reads_greater(STEPS_ORDER, backwards) else "<", STEPS_ORDER.decode(cursor))
    head, rows = _sqlite_read(
        conn,
        run_id,
        organization_id,
        filters,
        workflow_id=workflow_id,
        include_io=include_io,
        bound=bound,
        descending=backwards,
        limit=limit + 1,
    )
    page = page_of_rows(
        rows,
        STEPS_ORDER,
        limit=limit,
        cursor=cursor,
        backwards=backwards,
        key_of=_key,
        item_of=_doc,
    )
    return head, page


def sqlite_chunk(
    conn: sqlite3.Connection,
    run_id: UUID,
    organization_id: UUID,
    filters: dict[str, Any],
    *,
    workflow_id: UUID | None,
    last: tuple[Any, ...] | None,
    chunk: int,
) -> tuple[list[str], tuple[Any, ...] | None]:
    """Up to `chunk` step documents (with I/O) after the sort key `last`, and the key of
    the last one when more may follow."""
    _, rows = _sqlite_read(
        conn,
        run_id,
        organization_id,
        filters,
        workflow_id=workflow_id,
        include_io=True,
        bound=None if last is None else (">", last),
        descending=False,
        limit=chunk,
    )
    more = rows[-1][0] if len(rows) == chunk else None
    return [doc for _, doc in rows], more


def _key(row: tuple[tuple[Any, ...], str]) -> tuple[Any, ...]:
    return row[0]


def _doc(row: tuple[tuple[Any, ...], str]) -> str:
    return row[1]
