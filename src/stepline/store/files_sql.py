"""The SQL of files (`stepline.store.files`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.paging import Ordering
from stepline.store.tables import files as table

_LIVE_IN_ORGANIZATION = sa.and_(
    table.c.organization_id == sa.bindparam("organization_id"), table.c.deleted_at.is_(None)
)
GET = sa.select(table).where(_LIVE_IN_ORGANIZATION, table.c.id == sa.bindparam("file_id"))
LIST = sa.select(table).where(_LIVE_IN_ORGANIZATION)
INSERT = table.insert()
# Parameters named apart from the columns: an UPDATE reserves the columns' own names.
SOFT_DELETE = (
    table.update()
    .where(
        table.c.organization_id == sa.bindparam("in_organization"),
        table.c.id == sa.bindparam("file_id"),
        table.c.deleted_at.is_(None),
    )
    .values(deleted_at=sa.bindparam("now"))
)
CONTENT_IN_USE = sa.select(table.c.id).where(
    table.c.sha256 == sa.bindparam("sha256"), table.c.deleted_at.is_(None)
)
# The two-key form of advisory locks: a key space apart from the one-key locks used elsewhere.
CONTENT_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, :key)")
CONTENT_LOCK_SPACE = 0x66696C65
"""'file': the key space of contents' locks (their key is a piece of their sha256)."""

FILES_ORDER = Ordering(
    "files", (table.c.created_at, table.c.id), ("datetime", "uuid"), descending=True
)
"""Newest first."""
