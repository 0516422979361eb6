"""PostgreSQL ranks a collection by the same BM25 as SQLite's FTS5: on the retrieval
quality corpus every query gives the same chunks, in the same order, with the same
scores, on both databases."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from stepline.retrieval.chunking import chunk_text
from stepline.store import Store
from support.knowledge import CORPUS, CORPUS_CHUNKING, QUERIES

MORE_QUERIES = [
    "green light energy",
    "sourdough starter yeast bread",
    "the king",
    "water gravity city",
    "congestion window packet loss",
    "bees bees honey",  # a repeated term counts twice, as FTS5's phrases do
]


async def _corpus(store: Store) -> tuple[UUID, UUID]:
    org = await store.organizations.ensure(f"bm25-{uuid4().hex[:8]}")
    collection = await store.collections.create(org, "corpus")
    for name, text in CORPUS.items():
        await store.collections.add_chunks(
            org, collection.id, chunk_text(text, CORPUS_CHUNKING), source=name
        )
    return org, collection.id


# Synchronous: the session fixtures it pulls in run event loops of their own.
@pytest.fixture
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A fresh SQLite database (FTS5's statistics are over its whole table) and the
    session's PostgreSQL one (BM25's statistics there are the collection's own)."""
    template: Path = request.getfixturevalue("sqlite_template")
    shutil.copyfile(template, tmp_path / "stepline.db")
    postgres_url: str = request.getfixturevalue("postgres_session_url")
    return f"sqlite+aiosqlite:///{tmp_path / 'stepline.db'}", postgres_url


@pytest.mark.postgres
async def test_postgresql_ranks_by_the_same_bm25_as_sqlite(urls: tuple[str, str]) -> None:
    sqlite, postgres = [await Store.connect(url) for url in urls]
    try:
        on_sqlite, on_postgres = await _corpus(sqlite), await _corpus(postgres)
        for query in [q for q, _ in QUERIES] + MORE_QUERIES:
            expected = await sqlite.collections.search(*on_sqlite, query, limit=10)
            found = await postgres.collections.search(*on_postgres, query, limit=10)
            assert expected, query
            assert [h.text for h in found] == [h.text for h in expected], query
            scores = [h.score for h in expected]
            assert [h.score for h in found] == pytest.approx(scores, rel=1e-6), query
    finally:
        await sqlite.close()
        await postgres.close()


@pytest.mark.postgres
async def test_tied_scores_keep_the_order_chunks_were_added_in(urls: tuple[str, str]) -> None:
    # Six chunks of one length holding the term once score the same: both databases
    # list them as they were added (ids are random, so ordering ties by id would not).
    texts = [f"zeppelin number {word} flies" for word in ("one", "two", "six", "ten", "red", "big")]
    for url in urls:
        store = await Store.connect(url)
        try:
            org = await store.organizations.ensure(f"ties-{uuid4().hex[:8]}")
            collection = await store.collections.create(org, "ties")
            for index, text in enumerate(texts):
                await store.collections.add_chunks(
                    org, collection.id, chunk_text(text, CORPUS_CHUNKING), source=f"s{index}"
                )
            found = await store.collections.search(org, collection.id, "zeppelin", limit=10)
            assert [h.text for h in found] == texts, url.split(":")[0]
            assert len({round(h.score, 9) for h in found}) == 1
        finally:
            await store.close()
