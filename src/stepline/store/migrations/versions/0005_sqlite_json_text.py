"""SQLite: JSON columns declared TEXT, so a document that is a bare number keeps its text.

Declared JSON, a column had NUMERIC affinity: SQLite stored a bare number as an INTEGER or
REAL, so an integer past 64 bits came back as a float and some floats lost their last
digit. Only the declared types change (`PRAGMA writable_schema`, SQLite's own procedure
for a change that leaves the stored records and every index as they are: none of these
columns is indexed), and the numbers stored so far become the text they are read as, so
that every value matches its column's affinity. PostgreSQL's JSONB keeps numbers exactly:
nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pydantic_core
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    "api_keys": ("scopes",),
    "run_events": ("data",),
}
_AS_JSON_TEXT = "stepline_migration_json_text"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _declare(bind, "JSON", "TEXT")
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.create_function(_AS_JSON_TEXT, 1, _json_text, deterministic=True)
    for table, columns in JSON_COLUMNS.items():
        numeric = " OR ".join(f"typeof({c}) IN ('integer', 'real')" for c in columns)
        values = ", ".join(
            f"{c} = CASE WHEN typeof({c}) IN ('integer', 'real') "
            f"THEN {_AS_JSON_TEXT}({c}) ELSE {c} END"
            for c in columns
        )
        bind.exec_driver_sql(f"UPDATE {table} SET {values} WHERE {numeric}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _declare(bind, "TEXT", "JSON")


def _json_text(value: Any) -> Any:
    """A stored number as the JSON text pydantic wrote for it (other values as they are)."""
    if isinstance(value, float):
        return pydantic_core.to_json(value).decode()
    if isinstance(value, int):
        return str(value)
    return value


def _declare(bind: sa.Connection, old: str, new: str) -> None:
    """Change the declared type of the JSON columns from `old` to `new`."""
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        for table, columns in JSON_COLUMNS.items():
            sql = bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).scalar_one()
            for column in columns:
                sql, count = re.subn(
                    rf'^(\s*"?{column}"?\s+){old}\b', rf"\g<1>{new}", sql, flags=re.MULTILINE
                )
                if count != 1:
                    raise RuntimeError(f"cannot find the column {table}.{column} declared {old}")
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, table)
            )
        # Every connection (this one too) reads the schema again.
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
