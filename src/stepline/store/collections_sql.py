"""The SQL of collections (`stepline.store.collections`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.paging import Ordering
from stepline.store.tables import chunks, collections

_LIVE_COLLECTION = sa.and_(
    collections.c.organization_id == sa.bindparam("organization_id"),
    collections.c.deleted_at.is_(None),
)
GET_COLLECTION = sa.select(collections).where(
    _LIVE_COLLECTION, collections.c.id == sa.bindparam("collection_id")
)
COLLECTION_BY_NAME = sa.select(collections).where(
    _LIVE_COLLECTION, collections.c.name == sa.bindparam("name")
)
LIST_COLLECTIONS = sa.select(collections).where(_LIVE_COLLECTION)
INSERT_COLLECTION = collections.insert()
SOFT_DELETE_COLLECTION = (
    collections.update()
    .where(collections.c.id == sa.bindparam("collection_id"), collections.c.deleted_at.is_(None))
    .values(deleted_at=sa.bindparam("now"))
)
INSERT_CHUNK = chunks.insert()
SOURCES = (
    sa.select(
        chunks.c.source_id,
        chunks.c.file_id,
        chunks.c.source,
        sa.func.count().label("chunk_count"),
        sa.func.min(chunks.c.created_at).label("created_at"),
    )
    .where(chunks.c.collection_id == sa.bindparam("collection_id"))
    .group_by(chunks.c.source_id, chunks.c.file_id, chunks.c.source)
    .order_by(sa.func.min(chunks.c.created_at), chunks.c.source_id)
)
SOURCE_ROWIDS = sa.select(chunks.c.fts_rowid).where(
    chunks.c.collection_id == sa.bindparam("collection_id"),
    chunks.c.source_id == sa.bindparam("source_id"),
)
COLLECTION_ROWIDS = sa.select(chunks.c.fts_rowid).where(
    chunks.c.collection_id == sa.bindparam("collection_id")
)
DELETE_SOURCE = chunks.delete().where(
    chunks.c.collection_id == sa.bindparam("collection_id"),
    chunks.c.source_id == sa.bindparam("source_id"),
)
DELETE_COLLECTION_CHUNKS = chunks.delete().where(
    chunks.c.collection_id == sa.bindparam("collection_id")
)

VECTORS = sa.select(chunks.c.id, chunks.c.embedding).where(
    chunks.c.organization_id == sa.bindparam("organization_id"),
    chunks.c.collection_id == sa.bindparam("collection_id"),
    chunks.c.embedding.is_not(None),
)
CHUNKS_BY_ID = sa.select(chunks, sa.literal(0.0).label("score")).where(
    chunks.c.organization_id == sa.bindparam("organization_id"),
    chunks.c.collection_id == sa.bindparam("collection_id"),
    chunks.c.id.in_(sa.bindparam("chunk_ids", expanding=True)),
)

# SQLite: the FTS5 table, its rowids kept in chunks.fts_rowid.
_FTS = sa.table(
    "chunks_fts",
    sa.column("rowid", sa.BigInteger()),
    sa.column("text"),
    sa.column("collection_key"),
)
FTS_NEXT_ROWID = sa.select(sa.func.coalesce(sa.func.max(_FTS.c.rowid), 0) + 1)
FTS_INSERT = _FTS.insert()
FTS_DELETE = sa.text("DELETE FROM chunks_fts WHERE rowid = :rowid")
_BM25 = sa.func.bm25(sa.literal_column("chunks_fts"), 1.0, 0.0)
SCORE_DIGITS = 9
"""Scores equal to this many decimals are ties (each database sums in its own order, so
equal scores can differ in their last bits), broken the same way on both databases: the
order the chunks were added in (then their ids, for chunks added at the same instant)."""
_TIES = (chunks.c.created_at, chunks.c.position, chunks.c.id)
SQLITE_SEARCH = (
    sa.select(chunks, (-_BM25).label("score"))
    .select_from(_FTS.join(chunks, chunks.c.fts_rowid == _FTS.c.rowid))
    .where(
        sa.literal_column("chunks_fts").op("MATCH")(sa.bindparam("match")),
        chunks.c.organization_id == sa.bindparam("organization_id"),
        chunks.c.collection_id == sa.bindparam("collection_id"),
    )
    .order_by(sa.func.round(_BM25, SCORE_DIGITS), *_TIES)
    .limit(sa.bindparam("limit"))
)

# PostgreSQL: BM25 over the generated tsvector column (its GIN index finds the matches),
# computed as SQLite's FTS5 computes it, with the collection as the corpus:
#   score = sum over the query's terms t of
#           idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))
#   idf(t) = ln((N - n(t) + 0.5) / (n(t) + 0.5)), at least 1e-6 (FTS5's floor)
# N: the collection's chunks; n(t): those holding t (counted through the index); tf: t's
# positions in the chunk's tsvector; len: the chunk's words (`token_count`), avg_len their
# mean over the collection. FTS5 counts its row's collection key as one more token, so
# both lengths do here too (BM25_KEY_TOKENS), and a term repeated in the query (after
# stemming) counts as often as FTS5's phrases do. The statistics are MATERIALIZED: computed
# once per search, not once per matching chunk.
BM25_K1 = 1.2
BM25_B = 0.75
BM25_KEY_TOKENS = 1
_CHUNK_COLUMNS = ", ".join(f"chunks.{column.name}" for column in chunks.c)
_IN_COLLECTION = "{t}.organization_id = :organization_id AND {t}.collection_id = :collection_id"
POSTGRES_SEARCH = sa.text(
    f"""
WITH query AS MATERIALIZED (
    SELECT lexeme, coalesce(array_length(positions, 1), 1) AS repeats,
           quote_literal(lexeme)::tsquery AS probe
    FROM unnest(to_tsvector('english', :words))
),
corpus AS MATERIALIZED (
    SELECT count(*)::float8 AS size,
           avg(coalesce(token_count, length(search_vector)) + {BM25_KEY_TOKENS})::float8
               AS avg_len
    FROM chunks WHERE {_IN_COLLECTION.format(t="chunks")}
),
terms AS MATERIALIZED (
    SELECT query.lexeme, query.repeats,
           greatest(ln((corpus.size - holding.n + 0.5) / (holding.n + 0.5)), 1e-6) AS idf
    FROM query CROSS JOIN corpus
    CROSS JOIN LATERAL (
        SELECT count(*)::float8 AS n FROM chunks AS c
        WHERE {_IN_COLLECTION.format(t="c")}
          AND c.search_vector @@ query.probe
    ) AS holding
),
scores AS (
    SELECT c.id, sum(
        terms.repeats * terms.idf * found.tf * ({BM25_K1} + 1)
        / (found.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B}
            * (coalesce(c.token_count, length(c.search_vector)) + {BM25_KEY_TOKENS})
            / corpus.avg_len))
    ) AS score
    FROM chunks AS c
    CROSS JOIN corpus
    CROSS JOIN LATERAL (
        SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1)::float8 AS tf
        FROM unnest(c.search_vector) AS u
    ) AS found
    JOIN terms ON terms.lexeme = found.lexeme
    WHERE {_IN_COLLECTION.format(t="c")}
      AND c.search_vector @@ websearch_to_tsquery('english', :match)
    GROUP BY c.id
)
SELECT {_CHUNK_COLUMNS}, scores.score
FROM scores JOIN chunks ON chunks.id = scores.id
ORDER BY round(scores.score::numeric, {SCORE_DIGITS}) DESC, chunks.created_at, chunks.position,
    chunks.id
LIMIT :limit
"""
).bindparams(
    sa.bindparam("organization_id", type_=sa.Uuid()),
    sa.bindparam("collection_id", type_=sa.Uuid()),
)

COLLECTIONS_ORDER = Ordering(
    "collections",
    (collections.c.created_at, collections.c.id),
    ("datetime", "uuid"),
    descending=True,
)
"""Newest first."""
