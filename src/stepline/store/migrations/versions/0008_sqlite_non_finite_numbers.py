"""SQLite: NaN and Infinity stored before they were refused become null.

Until non-finite numbers were refused (in input, and from any node), pydantic wrote them as
`NaN`, `Infinity` and `-Infinity`, which is not JSON: SQLite's json() calls such a document
malformed, and a reader that passes the stored text on serves something no JSON parser
takes. Each is replaced by null, what JSON.stringify makes of them; every other value keeps
its exact text (strings that merely say "NaN" included). PostgreSQL's JSONB never took them:
nothing to do there. Each changed cell is counted in a warning.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import pydantic_core
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("stepline.store.migrations")

JSON_COLUMNS = {
    "workflow_versions": ("definition",),
    "runs": ("inputs", "output", "error_details"),
    "steps": (
        "inputs",
        "outputs",
        "handle_inputs",
        "handle_outputs",
        "error_details",
        "tokens",
        "cost",
        "attempts",
        "iteration_context",
        "trace_spans",
        "step_metadata",
    ),
    "run_events": ("data",),
}
"""As at revision 0007 (not read off the tables: history must not move)."""
_FINITE_JSON = "stepline_migration_finite_json"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.create_function(_FINITE_JSON, 1, _finite_json, deterministic=True)
    for table, columns in JSON_COLUMNS.items():
        for column in columns:
            # Cheap filter first: only a text that spells one can hold one.
            changed = bind.exec_driver_sql(
                f"UPDATE {table} SET {column} = {_FINITE_JSON}({column}) "
                f"WHERE ({column} LIKE '%NaN%' OR {column} LIKE '%Infinity%') "
                f"AND {_FINITE_JSON}({column}) IS NOT {column}"
            ).rowcount
            if changed:
                log.warning(
                    "%s.%s: %d stored document(s) held NaN or Infinity, now null",
                    table,
                    column,
                    changed,
                )


def downgrade() -> None:
    # Which null was a NaN is not kept; the documents stay valid JSON at the old revision.
    pass


def _finite_json(text: Any) -> Any:
    """`text` with each non-finite number as null; `text` itself when it holds none."""
    if not isinstance(text, str):
        return text
    found = False

    def constant(_: str) -> None:
        nonlocal found
        found = True
        return None

    try:
        value = json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError):
        return text  # what Python cannot read here is left as it was
    if not found:
        return text
    return pydantic_core.to_json(_finite(value)).decode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # 1e999 is read as inf without passing through parse_constant
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
