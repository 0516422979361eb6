"""Migrations create the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from store_helpers import insert_legacy_run, insert_legacy_steps, new_step

from stepline.records import (
    IterationContext,
    IterationFrame,
    RunRecord,
    StepRecord,
    WorkflowRecord,
    WorkflowVersion,
    utcnow,
)
from stepline.store import Store
from stepline.store.collections import SEARCH_OBJECTS
from stepline.store.database import HEAD_REVISION, alembic_config
from stepline.store.tables import metadata, runs, steps, workflow_versions, workflows
from support.engine import run_workflow
from support.step_order import CREATION_ORDER, EXPECTED_ORDER, EXPECTED_STEPS, NESTED_LOOPS

TABLES = {
    "organizations",
    "workflows",
    "workflow_versions",
    "runs",
    "steps",
    "users",
    "api_keys",
    "run_events",
    "secrets",
    "files",
    "collections",
    "chunks",
    "workers",
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _is_search_object(name: str) -> bool:
    """Whether a name is one of the full-text structures migration 0010 makes per database
    (the FTS5 table and its shadow tables, the tsvector column and its index)."""
    return name in SEARCH_OBJECTS or name.startswith("chunks_fts_")


def _schema(conn: sa.Connection) -> tuple[set[str], str | None]:
    tables = {name for name in sa.inspect(conn).get_table_names() if not _is_search_object(name)}
    version = MigrationContext.configure(conn).get_current_revision()
    return tables, version


def _names_search_object(difference: Any) -> bool:
    # ("remove_table", Table), ("remove_index", Index), or [("remove_column", ..., Column)]
    items = difference if isinstance(difference, list) else [difference]
    names = [getattr(part, "name", None) for item in items for part in item]
    return any(isinstance(name, str) and _is_search_object(name) for name in names)


async def test_upgrade_creates_every_table_at_head(empty_database_url: str) -> None:
    store = await Store.connect(empty_database_url)
    try:
        tables, version = await store.database.read(_schema)
        assert tables == set()
        await store.upgrade()
        tables, version = await store.database.read(_schema)
    finally:
        await store.close()
    assert tables == TABLES | {"alembic_version"}
    assert version == _head()


async def test_upgrade_twice_changes_nothing_and_keeps_rows(empty_database_url: str) -> None:
    store = await Store.connect(empty_database_url)
    try:
        await store.upgrade()
        org = await store.organizations.ensure("acme")
        await store.upgrade()
        assert await store.organizations.ensure("acme") == org
        _, version = await store.database.read(_schema)
    finally:
        await store.close()
    assert version == _head()


async def test_concurrent_upgrades_from_two_stores_both_succeed(empty_database_url: str) -> None:
    first, second = await Store.connect(empty_database_url), await Store.connect(empty_database_url)
    try:
        await asyncio.gather(first.upgrade(), second.upgrade())
        _, version = await first.database.read(_schema)
    finally:
        await first.close()
        await second.close()
    assert version == _head()


async def test_migrated_schema_matches_table_metadata(empty_database_url: str) -> None:
    store = await Store.connect(empty_database_url)
    try:
        await store.upgrade()

        def diff(conn: sa.Connection) -> list[object]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return [
                difference
                for difference in compare_metadata(context, metadata)
                if not _names_search_object(difference)
            ]

        differences = await store.database.read(diff)
    finally:
        await store.close()
    assert differences == []


async def test_alembic_command_migrates_the_url_in_its_config(empty_database_url: str) -> None:
    # The path of `alembic upgrade head` run by a developer: env.py opens the URL itself.
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", empty_database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    store = await Store.connect(empty_database_url)
    try:
        tables, version = await store.database.read(_schema)
    finally:
        await store.close()
    assert tables == TABLES | {"alembic_version"}
    assert version == _head()


def test_tables_have_a_column_for_every_record_field() -> None:
    # A field added to a record without a column (and a migration) would silently vanish.
    assert {c.name for c in steps.c} == set(StepRecord.model_fields)
    assert {c.name for c in runs.c} == set(RunRecord.model_fields) - {"step_counts"}
    assert {c.name for c in workflows.c} == set(WorkflowRecord.model_fields) | {"deleted_at"}
    assert {c.name for c in workflow_versions.c} == set(WorkflowVersion.model_fields) | {
        "organization_id"
    }


async def test_upgrade_renames_live_duplicate_names_keeping_the_oldest(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A database from before names were unique in the database may hold duplicates; 0004
    # keeps each name on its oldest live workflow and renames the later ones.
    store = await Store.connect(empty_database_url)
    try:
        await store.database.migrate(lambda conn: command.upgrade(alembic_config(conn), "0003"))
        org, other_org = await store.organizations.ensure(), await store.organizations.ensure("b")
        workspace = uuid4()
        start = utcnow() - timedelta(days=1)
        rows: dict[str, dict[str, Any]] = {}

        def add(key: str, name: str, **fields: Any) -> None:
            at = start + timedelta(minutes=len(rows))
            rows[key] = {
                "id": uuid4(),
                "organization_id": org,
                "workspace_id": None,
                "name": name,
                "description": "",
                "latest_version": 1,
                "created_at": at,
                "updated_at": at,
                "deleted_at": None,
                **fields,
            }

        add("deleted", "etl", deleted_at=start)  # holds no name: it stays as it is
        add("first", "etl")
        add("taken", "etl (2)")
        add("second", "etl")
        add("third", "etl")
        add("in_workspace", "etl", workspace_id=workspace)
        add("in_workspace_too", "etl", workspace_id=workspace)
        add("other_org", "etl", organization_id=other_org)
        add("long", "n" * 200)
        add("long_too", "n" * 200)
        await store.writer.submit(
            lambda conn: conn.execute(workflows.insert(), list(rows.values()))
        )

        with caplog.at_level(logging.WARNING, logger="stepline.store.migrations"):
            await store.upgrade()

        def names(conn: sa.Connection) -> dict[UUID, str]:
            return {
                id_: name for id_, name in conn.execute(sa.select(workflows.c.id, workflows.c.name))
            }

        renamed = await store.database.read(names)
        assert {key: renamed[row["id"]] for key, row in rows.items()} == {
            "deleted": "etl",
            "first": "etl",
            "taken": "etl (2)",
            "second": "etl (3)",
            "third": "etl (4)",
            "in_workspace": "etl",
            "in_workspace_too": "etl (2)",
            "other_org": "etl",
            "long": "n" * 200,
            "long_too": "n" * 196 + " (2)",
        }
        assert len(caplog.records) == 4
        assert str(rows["second"]["id"]) in caplog.text and "'etl (3)'" in caplog.text
        # From now on the database itself refuses a second live workflow of a name.
        with pytest.raises(sa.exc.IntegrityError):
            await store.writer.submit(
                lambda conn: conn.execute(
                    workflows.insert(), {**rows["first"], "id": uuid4(), "created_at": utcnow()}
                )
            )
        _, version = await store.database.read(_schema)
    finally:
        await store.close()
    assert version == _head()


async def test_upgrade_puts_existing_steps_in_execution_order(empty_database_url: str) -> None:
    # A database of 0005 holds a run of a workflow with a loop in a loop, its steps in
    # creation order (seq), and a step of a node its version does not have; 0006 keys
    # them as the engine does, and lists the stray one last.
    store = await Store.connect(empty_database_url)
    try:
        await store.database.migrate(lambda conn: command.upgrade(alembic_config(conn), "0005"))
        org = await store.organizations.ensure()
        saved = await store.workflows.save(org, NESTED_LOOPS)
        legacy_run = RunRecord(
            workflow_id=saved.workflow.id, workflow_version=1, organization_id=org
        )
        run = await store.writer.submit(lambda conn: insert_legacy_run(conn, legacy_run))
        frames = {step_id: loops for step_id, _, loops in EXPECTED_STEPS}
        nodes = {step_id: node_id for step_id, node_id, _ in EXPECTED_STEPS}
        legacy = [
            new_step(
                run,
                seq,
                step_id,
                node_id=nodes[step_id],
                loop_id=frames[step_id][-1][0] if frames[step_id] else None,
                iteration=frames[step_id][-1][1] if frames[step_id] else None,
                iteration_context=IterationContext(
                    frames=[
                        IterationFrame(container_id=c, container_type="for_each", iteration=i)
                        for c, i in frames[step_id]
                    ]
                )
                if frames[step_id]
                else None,
            )
            for seq, step_id in enumerate(CREATION_ORDER)
        ]
        legacy.insert(3, new_step(run, len(legacy), "gone", node_id="gone"))
        await store.writer.submit(lambda conn: insert_legacy_steps(conn, legacy))

        await store.upgrade()
        migrated = await store.steps.list(run.id)
        assert [s.step_id for s in migrated] == [*EXPECTED_ORDER, "gone"]
        # The keys are those the engine gives a new run of the same workflow.
        fresh = await run_workflow(store, NESTED_LOOPS)
        assert fresh.run.status == "completed", fresh.run.error
        assert {s.step_id: s.order_key for s in migrated if s.step_id != "gone"} == {
            s.step_id: s.order_key for s in fresh.steps.values()
        }
        # And the pages read them in that order, by the new index.
        page = await store.steps.page(run.id, organization_id=org, limit=5, include_io=False)
        assert [s.step_id for s in page.items] == EXPECTED_ORDER[:5]
    finally:
        await store.close()


async def test_0006_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    store = await Store.connect(empty_database_url)
    try:
        await store.upgrade()
        await store.database.migrate(lambda conn: command.downgrade(alembic_config(conn), "0005"))
        columns = await store.database.read(
            lambda conn: {c["name"] for c in sa.inspect(conn).get_columns("steps")}
        )
        assert "order_key" not in columns and "seq" in columns
        await store.upgrade()
        _, version = await store.database.read(_schema)
    finally:
        await store.close()
    assert version == _head()


def test_the_head_revision_stepline_checks_first_is_alembics() -> None:
    # `upgrade` skips alembic when the database is at HEAD_REVISION, read off the
    # migration files' names: it must be the head alembic itself finds.
    assert HEAD_REVISION == _head()
