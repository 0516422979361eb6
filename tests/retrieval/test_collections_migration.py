"""Migration 0010 makes and unmakes the collections, the chunks and each database's
full-text structures; 0014 counts the words of the chunks already there (PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from stepline.retrieval.chunking import chunk_text
from stepline.store import Store
from stepline.store.collections import token_count
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


async def test_0014_counts_the_words_of_existing_chunks_on_postgresql(store_url: str) -> None:
    store = await Store.connect(store_url)
    try:
        org = await store.organizations.ensure()
        collection = await store.collections.create(org, "docs")
        text = "Lighthouse keepers, 24 hours a day: the lamp_room's oil."
        await store.collections.add_chunks(org, collection.id, chunk_text(text), source="a")
        await store.database.migrate(lambda conn: command.downgrade(alembic_config(conn), "0013"))
        await store.upgrade()
        counts = await store.database.read(
            lambda conn: conn.execute(sa.text("SELECT token_count FROM chunks")).scalars().all()
        )
        # lighthouse keepers 24 hours a day the lamp room s oil: as FTS5's unicode61 splits.
        assert counts == ([11] if store.dialect == "postgresql" else [None])
        assert token_count(text) == 11
        [hit] = await store.collections.search(org, collection.id, "lighthouse")
        assert hit.text == text
    finally:
        await store.close()
