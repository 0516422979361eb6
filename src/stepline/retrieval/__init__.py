"""Knowledge retrieval: collections of chunked text, searched with the database's own
full-text search (BM25 on SQLite's FTS5, ranked full-text search on PostgreSQL)."""
