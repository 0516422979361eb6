"""Knowledge collections as stored: an organization's named sets of chunks, and their search.

A source (a text, or a file parsed to text) is added as its chunks, all at once under one
`source_id`; removing the source removes them. Search ranks a collection's chunks against
a query with the database's own full-text search, kept in step with the chunks in the same
transaction: on SQLite an FTS5 table ranked by `bm25()` (the score is its negation, so
higher is better), on PostgreSQL a generated tsvector column ranked by the same BM25,
computed in SQL from the collection's term statistics (`collections_sql.POSTGRES_SEARCH`).
Scores are comparable within one search only.

A query is never FTS syntax: its words are taken out of it (letters and digits) and
searched for as plain terms, any of which may match, so no input (quotes, `*`, `NEAR(`,
`-`, 10,000 characters) can fail a search or change its meaning. A collection of another
organization, or a deleted one, is not found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import new_id, utcnow
from stepline.retrieval.chunking import Chunk
from stepline.store import collections_sql as sql
from stepline.store import organizations_sql
from stepline.store.errors import DuplicateError, NotFoundError, StoreError
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository

MAX_NAME_CHARS = 200
MAX_QUERY_TERMS = 32
"""Words of a query past these are ignored (a search stays one bounded query)."""
MAX_TERM_CHARS = 64
MAX_RESULTS = 100

SEARCH_OBJECTS = frozenset({"chunks_fts", "search_vector", "ix_chunks_search_vector"})
"""The full-text structures migration 0010 makes per database, which `tables` does not
describe (an FTS5 table and its shadow tables `chunks_fts_*`; a tsvector column, its index)."""

_WORD = re.compile(r"[^\W_]+")
# Words too common to tell chunks apart: PostgreSQL's english stop words (its
# tsearch_data/english.stop, which its search drops anyway) and a few more, left out of
# queries on both databases so that a query means the same on either. A query of nothing
# else still searches for them.
_STOPWORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what which "
    "who whom this that these those am is are was were be been being have has had having do "
    "does did doing a an the and but if or because as until while of at by for with about "
    "against between into through during before after above below to from up down in out on "
    "off over under again further then once here there when where why how all any both each "
    "few more most other some such no nor not only own same so than too very s t can will "
    "just don should now would".split()
)

# records------------------------------------------------------------------------------


class CollectionNotFoundError(NotFoundError):
    """No live collection of that id (or name) in the organization."""


class SourceNotFoundError(NotFoundError):
    """No source of that id in the collection."""


class CollectionNameTakenError(StoreError):
    """Another live collection of the organization has the name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a collection named {name!r} already exists")
        self.name = name


class CollectionRecord(BaseModel):
    """A collection: a named set of chunks an organization searches."""

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=new_id)
    organization_id: UUID
    name: str
    description: str = ""
    embedding_model: str | None = Field(
        default=None,
        description="The model its chunks are embedded with (hybrid ranking); None: BM25 only.",
    )
    embedding_provider: str | None = Field(
        default=None,
        description="The configured provider that embeds its chunks; None: not recorded.",
    )
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


class SourceRecord(BaseModel):
    """What was added to a collection at once: a text or a file, as its chunks."""

    model_config = ConfigDict(extra="forbid")

    source_id: UUID
    collection_id: UUID
    file_id: UUID | None = None
    source: str = Field(description="A label: the file's name, or the caller's for a text.")
    chunk_count: int
    created_at: datetime


class SearchHit(BaseModel):
    """A chunk that matched a search, with its score (higher ranks first)."""

    model_config = ConfigDict(extra="forbid")

    chunk_id: UUID
    collection_id: UUID
    source_id: UUID
    file_id: UUID | None
    source: str
    position: int
    page: int | None
    char_start: int
    char_end: int
    text: str
    score: float


def query_terms(query: str) -> list[str]:
    """The words a search looks for: letters and digits only, lowercased, each once, at
    most MAX_QUERY_TERMS of them (longer words cut), common English words left out
    unless there is nothing else."""
    terms: list[str] = []
    for match in _WORD.finditer(query):
        term = match.group().lower()[:MAX_TERM_CHARS]
        if term not in terms:
            terms.append(term)
            if len(terms) == MAX_QUERY_TERMS * 4:
                break
    telling = [term for term in terms if term not in _STOPWORDS]
    return (telling or terms)[:MAX_QUERY_TERMS]


def token_count(text: str) -> int:
    """The words of `text` as SQLite's unicode61 tokenizer splits them (runs of letters
    and digits): a chunk's length for BM25 on PostgreSQL."""
    return sum(1 for _ in _WORD.finditer(text))


def fts5_match(terms: Sequence[str], collection_id: UUID) -> str:
    """An FTS5 query for any of `terms` within the collection: each term a quoted string
    (terms hold no quote, and a quoted string is never an operator)."""
    words = " OR ".join(f'"{term}"' for term in terms)
    return f'collection_key : "{_collection_key(collection_id)}" AND ({words})'


def websearch_match(terms: Sequence[str]) -> str:
    """A `websearch_to_tsquery` input for any of `terms` (that function accepts any text)."""
    return " or ".join(terms)


def _collection_key(collection_id: UUID) -> str:
    return f"c{collection_id.hex}"


def check_collection_name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME_CHARS:
        raise ValueError(f"a collection name must have 1 to {MAX_NAME_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise ValueError(f"a collection name cannot hold control characters: {clean!r}")
    return clean


def _collection(row: Any) -> CollectionRecord:
    return CollectionRecord.model_validate(dict(row))


def _hit(row: Any) -> SearchHit:
    return SearchHit(
        chunk_id=row["id"],
        collection_id=row["collection_id"],
        source_id=row["source_id"],
        file_id=row["file_id"],
        source=row["source"],
        position=row["position"],
        page=row["page"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        text=row["text"],
        score=float(row["score"]),
    )


class CollectionRepository(Repository):
    """Creating, reading, listing and deleting collections; adding and removing their
    sources; searching their chunks."""

    async def create(
        self,
        organization_id: UUID,
        name: str,
        description: str = "",
        *,
        embedding_model: str | None = None,
        embedding_provider: str | None = None,
    ) -> CollectionRecord:
        """A new collection; ValueError for an unusable name, CollectionNameTakenError if
        a live collection of the organization has it, NotFoundError without the organization."""
        record = CollectionRecord(
            organization_id=organization_id,
            name=check_collection_name(name),
            description=description,
            embedding_model=embedding_model,
            embedding_provider=embedding_provider,
        )
        params = {"organization_id": organization_id, "name": record.name}

        def op(conn: sa.Connection) -> CollectionRecord:
            if conn.execute(organizations_sql.EXISTS, params).first() is None:
                raise NotFoundError(f"organization {organization_id} not found")
            if conn.execute(sql.COLLECTION_BY_NAME, params).first() is not None:
                raise CollectionNameTakenError(record.name)
            conn.execute(sql.INSERT_COLLECTION, record.model_dump())
            return record

        try:
            return await self._write(op)
        except DuplicateError:
            # Another process took the name between our look and our insert.
            raise CollectionNameTakenError(record.name) from None

    async def get(self, organization_id: UUID, collection_id: UUID) -> CollectionRecord | None:
        """The organization's live collection of that id, else None."""
        params = {"organization_id": organization_id, "collection_id": collection_id}
        return await self._read(lambda conn: _first(conn, sql.GET_COLLECTION, params))

    async def find(self, organization_id: UUID, key: str) -> CollectionRecord | None:
        """The organization's live collection whose id, or else name, is `key`."""
        try:
            by_id = await self.get(organization_id, UUID(key))
        except ValueError:
            by_id = None
        if by_id is not None:
            return by_id
        params = {"organization_id": organization_id, "name": key.strip()}
        return await self._read(lambda conn: _first(conn, sql.COLLECTION_BY_NAME, params))

    async def page(
        self,
        organization_id: UUID,
        *,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[CollectionRecord]:
        """The organization's live collections, newest first, one page at a time."""
        return await self._read(
            lambda conn: read_page(
                conn,
                sql.LIST_COLLECTIONS,
                sql.COLLECTIONS_ORDER,
                limit=limit,
                after=after,
                before=before,
                params={"organization_id": organization_id},
                key_of=lambda row: (row["created_at"], row["id"]),
                item_of=_collection,
            )
        )

    async def delete(self, organization_id: UUID, collection_id: UUID) -> None:
        """Delete the collection (its record soft, its chunks and their index entries for
        good); CollectionNotFoundError if the organization has no such collection."""
        params = {"organization_id": organization_id, "collection_id": collection_id}

        def op(conn: sa.Connection) -> None:
            _live_collection(conn, params)
            if self.dialect == "sqlite":
                _delete_fts(conn, conn.execute(sql.COLLECTION_ROWIDS, params).scalars())
            conn.execute(sql.DELETE_COLLECTION_CHUNKS, params)
            conn.execute(sql.SOFT_DELETE_COLLECTION, params | {"now": utcnow()})

        await self._write(op)

    async def add_chunks(
        self,
        organization_id: UUID,
        collection_id: UUID,
        pieces: Sequence[Chunk],
        *,
        source: str,
        file_id: UUID | None = None,
        embeddings: Sequence[bytes] | None = None,
    ) -> SourceRecord:
        """Add a source as its chunks (and their index entries, in the same transaction),
        with each chunk's embedding if given; CollectionNotFoundError if the organization
        has no such collection."""
        if embeddings is not None and len(embeddings) != len(pieces):
            raise ValueError(f"{len(embeddings)} embeddings for {len(pieces)} chunks")
        source_id, now = new_id(), utcnow()
        params = {"organization_id": organization_id, "collection_id": collection_id}
        rows = [
            {
                "id": new_id(),
                "collection_id": collection_id,
                "organization_id": organization_id,
                "source_id": source_id,
                "file_id": file_id,
                "source": source,
                "position": piece.position,
                "page": piece.page,
                "char_start": piece.char_start,
                "char_end": piece.char_end,
                "text": piece.text,
                "created_at": now,
                "fts_rowid": None,
                "embedding": None if embeddings is None else embeddings[index],
                "token_count": token_count(piece.text),
            }
            for index, piece in enumerate(pieces)
        ]

        def op(conn: sa.Connection) -> SourceRecord:
            _live_collection(conn, params)
            if rows and self.dialect == "sqlite":
                # One writer at a time on SQLite: the next rowids are ours to take.
                first = int(conn.execute(sql.FTS_NEXT_ROWID).scalar_one())
                key = _collection_key(collection_id)
                for offset, row in enumerate(rows):
                    row["fts_rowid"] = first + offset
                conn.execute(
                    sql.FTS_INSERT,
                    [
                        {"rowid": r["fts_rowid"], "text": r["text"], "collection_key": key}
                        for r in rows
                    ],
                )
            if rows:
                conn.execute(sql.INSERT_CHUNK, rows)
            return SourceRecord(
                source_id=source_id,
                collection_id=collection_id,
                file_id=file_id,
                source=source,
                chunk_count=len(rows),
                created_at=now,
            )

        return await self._write(op)

    async def sources(self, organization_id: UUID, collection_id: UUID) -> list[SourceRecord]:
        """The collection's sources, oldest first; CollectionNotFoundError if none."""
        params = {"organization_id": organization_id, "collection_id": collection_id}

        def read(conn: sa.Connection) -> list[SourceRecord]:
            _live_collection(conn, params)
            return [
                SourceRecord(collection_id=collection_id, **dict(row))
                for row in conn.execute(sql.SOURCES, params).mappings()
            ]

        return await self._read(read)

    async def remove_source(
        self, organization_id: UUID, collection_id: UUID, source_id: UUID
    ) -> None:
        """Remove a source's chunks and their index entries; CollectionNotFoundError or
        SourceNotFoundError if the organization has no such collection or source."""
        params = {
            "organization_id": organization_id,
            "collection_id": collection_id,
            "source_id": source_id,
        }

        def op(conn: sa.Connection) -> None:
            _live_collection(conn, params)
            if self.dialect == "sqlite":
                _delete_fts(conn, conn.execute(sql.SOURCE_ROWIDS, params).scalars())
            if conn.execute(sql.DELETE_SOURCE, params).rowcount == 0:
                raise SourceNotFoundError(f"source {source_id} not found")

        await self._write(op)

    async def search(
        self, organization_id: UUID, collection_id: UUID, query: str, *, limit: int = 5
    ) -> list[SearchHit]:
        """The collection's chunks that best match `query`, best first (none for a query
        without words); CollectionNotFoundError if the organization has no such collection."""
        terms = query_terms(query)
        params: dict[str, Any] = {
            "organization_id": organization_id,
            "collection_id": collection_id,
            "limit": max(1, min(limit, MAX_RESULTS)),
        }
        search: sa.Executable
        if self.dialect == "sqlite":
            search = sql.SQLITE_SEARCH
            params["match"] = fts5_match(terms, collection_id)
        else:
            search = sql.POSTGRES_SEARCH
            params["match"] = websearch_match(terms)
            params["words"] = " ".join(terms)

        def read(conn: sa.Connection) -> list[SearchHit]:
            _live_collection(conn, params)
            if not terms:
                return []
            return [_hit(row) for row in conn.execute(search, params).mappings()]

        return await self._read(read)

    async def chunk_vectors(
        self, organization_id: UUID, collection_id: UUID
    ) -> list[tuple[UUID, bytes]]:
        """(chunk id, embedding) of each of the collection's embedded chunks."""
        params = {"organization_id": organization_id, "collection_id": collection_id}
        return await self._read(
            lambda conn: [(row[0], bytes(row[1])) for row in conn.execute(sql.VECTORS, params)]
        )

    async def chunks_by_id(
        self, organization_id: UUID, collection_id: UUID, chunk_ids: Sequence[UUID]
    ) -> list[SearchHit]:
        """The collection's chunks of these ids (any order), as hits scoring 0."""
        if not chunk_ids:
            return []
        params = {
            "organization_id": organization_id,
            "collection_id": collection_id,
            "chunk_ids": list(chunk_ids),
        }
        return await self._read(
            lambda conn: [_hit(row) for row in conn.execute(sql.CHUNKS_BY_ID, params).mappings()]
        )


def _first(conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any]) -> Any:
    row = conn.execute(query, params).mappings().first()
    return None if row is None else _collection(row)


def _live_collection(conn: sa.Connection, params: dict[str, Any]) -> None:
    if conn.execute(sql.GET_COLLECTION, params).first() is None:
        raise CollectionNotFoundError(f"collection {params['collection_id']} not found")


def _delete_fts(conn: sa.Connection, rowids: Any) -> None:
    batch = [{"rowid": rowid} for rowid in rowids if rowid is not None]
    if batch:
        conn.execute(sql.FTS_DELETE, batch)
