"""Migrations create the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from stepline.records import RunRecord, StepRecord, WorkflowRecord, WorkflowVersion
from stepline.store import Store
from stepline.store.database import alembic_config
from stepline.store.tables import metadata, runs, steps, workflow_versions, workflows

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
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _schema(conn: sa.Connection) -> tuple[set[str], str | None]:
    tables = set(sa.inspect(conn).get_table_names())
    version = MigrationContext.configure(conn).get_current_revision()
    return tables, version


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
        org = await store.ensure_organization("acme")
        await store.upgrade()
        assert await store.ensure_organization("acme") == org
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
            return list(compare_metadata(context, metadata))

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
