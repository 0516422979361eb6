"""Migration 0010 makes and unmakes the collections, the chunks and each database's
full-text structures."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from stepline.retrieval.chunking import chunk_text
from stepline.store import Store
from stepline.store.database import alembic_config


def _names(conn: sa.Connection) -> tuple[set[str], set[str]]:
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("chunks")} if "chunks" in tables else set()
    return tables, columns


async def test_0010_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    store = await Store.connect(empty_database_url)
    try:
        await store.upgrade()
        tables, columns = await store.database.read(_names)
        assert {"collections", "chunks"} <= tables
        if store.dialect == "sqlite":
            assert "chunks_fts" in tables
        else:
            assert "search_vector" in columns
        org = await store.organizations.ensure()
        collection = await store.collections.create(org, "docs")
        await store.collections.add_chunks(
            org, collection.id, chunk_text("lighthouse keepers"), source="a"
        )

        await store.database.migrate(lambda conn: command.downgrade(alembic_config(conn), "0009"))
        tables, _ = await store.database.read(_names)
        assert not {name for name in tables if "chunk" in name or "collection" in name}

        await store.upgrade()
        collection = await store.collections.create(org, "docs")
        await store.collections.add_chunks(
            org, collection.id, chunk_text("lighthouse keepers"), source="a"
        )
        [hit] = await store.collections.search(org, collection.id, "lighthouse")
        assert hit.text == "lighthouse keepers"
    finally:
        await store.close()
