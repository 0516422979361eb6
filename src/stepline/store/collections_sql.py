"""The SQL of collections (`stepline.store.collections`)."""

from __future__ import annotations

from typing import Any

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
SQLITE_SEARCH = (
    sa.select(chunks, (-_BM25).label("score"))
    .select_from(_FTS.join(chunks, chunks.c.fts_rowid == _FTS.c.rowid))
    .where(
        sa.literal_column("chunks_fts").op("MATCH")(sa.bindparam("match")),
        chunks.c.organization_id == sa.bindparam("organization_id"),
        chunks.c.collection_id == sa.bindparam("collection_id"),
    )
    .order_by(_BM25, chunks.c.id)
    .limit(sa.bindparam("limit"))
)

# PostgreSQL: the generated tsvector column and its GIN index.
_VECTOR: sa.ColumnElement[Any] = sa.literal_column("chunks.search_vector")
_TSQUERY = sa.func.websearch_to_tsquery(
    sa.literal_column("'english'::regconfig"), sa.bindparam("match")
)
_RANK = sa.func.ts_rank_cd(_VECTOR, _TSQUERY, 1)
POSTGRES_SEARCH = (
    sa.select(chunks, _RANK.label("score"))
    .where(
        _VECTOR.op("@@")(_TSQUERY),
        chunks.c.organization_id == sa.bindparam("organization_id"),
        chunks.c.collection_id == sa.bindparam("collection_id"),
    )
    .order_by(_RANK.desc(), chunks.c.id)
    .limit(sa.bindparam("limit"))
)

COLLECTIONS_ORDER = Ordering(
    "collections",
    (collections.c.created_at, collections.c.id),
    ("datetime", "uuid"),
    descending=True,
)
"""Newest first."""
