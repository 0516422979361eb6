"""Numbers keep their exact value through the store, at any depth, on SQLite and PostgreSQL.

SQLite stored JSON columns with NUMERIC affinity (declared JSON): a document that was a
bare number became an INTEGER or REAL, so 18446744073709551617 came back as
1.8446744073709552e+19, a 4,000-digit integer as Infinity, and some floats lost their
last digit. Migration 0005 declares them TEXT.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from store_helpers import (
    DOCUMENT_COLUMNS,
    Workflow,
    insert_legacy_run,
    insert_legacy_steps,
    new_step,
)

from stepline.records import RunStatus
from stepline.store import Store
from stepline.store.database import alembic_config
from stepline.store.tables import runs, steps

EXACT: list[Any] = [
    18446744073709551617,
    -18446744073709551617,
    int("7" * 4000),
    9223372036854775807,
    # Floats SQLite's text-to-REAL conversion rounded wrongly in its last digit.
    -6.073945971277733e-294,
    8.68641033611827e-297,
    0.30000000000000004,
    1.5,
]


def same(found: Any, expected: Any) -> bool:
    """Equal, and an integer still an integer (PostgreSQL may give a float with an integral
    value back as an integer, which JSON does not tell apart)."""
    if isinstance(expected, int) and not isinstance(expected, bool):
        return type(found) is int and found == expected
    return bool(found == expected)


@pytest.mark.parametrize("value", EXACT, ids=lambda v: repr(v)[:24])
async def test_a_bare_number_round_trips_through_steps_and_runs(
    store: Store, workflow: Workflow, value: Any
) -> None:
    run = await store.runs.create(workflow.run(inputs={"n": value}))
    await store.steps.insert([new_step(run, 0, inputs=value, outputs=value)])
    claimed = await store.runs.claim("w", 30, run_id=run.id)
    assert claimed is not None
    await store.runs.finish(run.id, "w", status=RunStatus.completed, output=value)

    (step,) = await store.steps.list(run.id)
    assert same(step.outputs, value) and same(step.inputs, value)
    stored = await store.runs.get(run.id)
    assert stored is not None
    assert same(stored.output, value) and same(stored.inputs["n"], value)
    # The API's fast path splices the stored text: parse it as a client would.
    page = await store.steps.page_documents(run.id, organization_id=run.organization_id)
    assert page is not None
    document = json.loads(page.items[0])
    assert same(document["outputs"], value) and same(document["inputs"], value)


async def test_numbers_nested_at_any_depth_round_trip(store: Store, workflow: Workflow) -> None:
    value: Any = EXACT
    for _ in range(60):
        value = {"deeper": [value]}
    run = await store.runs.create(workflow.run())
    await store.steps.insert([new_step(run, 0, outputs=value)])
    (step,) = await store.steps.list(run.id)
    found = step.outputs
    for _ in range(60):
        found = found["deeper"][0]
    assert all(same(f, e) for f, e in zip(found, EXACT, strict=True))


def _legacy_rows(conn: sa.Connection) -> None:
    """What a SQLite database of migration 0003 held: bare numbers as INTEGER and REAL."""
    conn.execute(runs.update().values(output=sa.literal_column("12345678901234567890")))
    conn.execute(steps.update().values(outputs=sa.literal_column("1.5e300")))


def _cells(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        cells = conn.execute(
            "SELECT typeof(r.output), r.output, typeof(s.outputs), s.outputs "
            "FROM runs r JOIN steps s ON s.run_id = r.id"
        ).fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return cells


async def test_migration_0005_keeps_sqlite_numbers_as_the_text_they_read_as(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    store = await Store.connect(url)
    try:
        await store.database.migrate(lambda conn: command.upgrade(alembic_config(conn), "0003"))
        org = await store.organizations.ensure("acme")
        saved = await store.workflows.save(org, {"name": "w", "nodes": []})
        workflow = Workflow(org, saved.workflow.id, saved.version.version)
        run = await store.writer.submit(lambda conn: insert_legacy_run(conn, workflow.run()))
        await store.writer.submit(lambda conn: insert_legacy_steps(conn, [new_step(run, 0)]))
        await store.writer.submit(_legacy_rows)
        with sqlite3.connect(path) as conn:
            before = conn.execute("SELECT typeof(output) FROM runs").fetchall()
        assert before == [("real",)]  # 20 digits: SQLite kept only a float of it

        await store.upgrade()
        assert _cells(path) == [("text", "1.2345678901234567e+19", "text", "1.5e+300")]
        (step,) = await store.steps.list(run.id)
        assert step.outputs == 1.5e300

        # From now on a bare number is stored as its text.
        await store.steps.insert([new_step(run, 1, outputs=18446744073709551617)])
        steps_now = {step.step_id: step for step in await store.steps.list(run.id)}
        assert steps_now["node1"].outputs == 18446744073709551617
    finally:
        await store.close()


def _non_finite_rows(conn: sa.Connection) -> None:
    """What a SQLite database written before non-finite numbers were refused could hold."""
    conn.execute(runs.update().values(output=sa.literal('{"score": NaN, "name": "NaN"}')))
    conn.execute(
        steps.update().values(
            outputs=sa.literal("[Infinity, -Infinity, 18446744073709551617, 0.1]"),
            inputs=sa.literal('"Infinity and beyond"'),
        )
    )


async def test_migration_0008_turns_stored_non_finite_numbers_into_null(tmp_path: Path) -> None:
    # SQLite kept NaN/Infinity as they were written; its json() calls that text malformed,
    # and any reader that passes the text on serves something that is not JSON.
    path = tmp_path / "old.db"
    store = await Store.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await store.database.migrate(lambda conn: command.upgrade(alembic_config(conn), "0007"))
        org = await store.organizations.ensure("acme")
        saved = await store.workflows.save(org, {"name": "w", "nodes": []})
        workflow = Workflow(org, saved.workflow.id, saved.version.version)
        run = await store.writer.submit(lambda conn: insert_legacy_run(conn, workflow.run()))
        await store.writer.submit(
            lambda conn: insert_legacy_steps(conn, [new_step(run, 0)], missing=DOCUMENT_COLUMNS)
        )
        await store.writer.submit(_non_finite_rows)

        await store.upgrade()
        with sqlite3.connect(path) as conn:
            cells = conn.execute(
                "SELECT r.output, s.outputs, s.inputs FROM runs r JOIN steps s ON s.run_id = r.id"
            ).fetchall()
        output, outputs, inputs = cells[0]
        # Every stored document is JSON now, exact where it was finite, strings untouched.
        assert json.loads(output, parse_constant=_refuse) == {"score": None, "name": "NaN"}
        assert json.loads(outputs, parse_constant=_refuse) == [
            None,
            None,
            18446744073709551617,
            0.1,
        ]
        assert json.loads(inputs) == "Infinity and beyond"
        (step,) = await store.steps.list(run.id)
        assert step.outputs == [None, None, 18446744073709551617, 0.1]
    finally:
        await store.close()


def _refuse(constant: str) -> Any:
    raise AssertionError(f"{constant} is still stored")
