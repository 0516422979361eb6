"""The SQL of API keys (`stepline.store.keys`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.paging import Ordering
from stepline.store.tables import api_keys

_OF_ORGANIZATION = api_keys.c.organization_id == sa.bindparam("organization_id")
# An update may not bind a column's own name: the key's organization is "owner_id".
_ONE = sa.and_(
    api_keys.c.id == sa.bindparam("key_id"),
    api_keys.c.organization_id == sa.bindparam("owner_id"),
)

INSERT = api_keys.insert()
BY_HASH = sa.select(api_keys).where(api_keys.c.key_hash == sa.bindparam("key_hash"))
OF_ORGANIZATION = (
    sa.select(api_keys)
    .where(_OF_ORGANIZATION)
    .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
)
# The base of a page of an organization's keys; `ORDER` orders and bounds it.
PAGE = sa.select(api_keys).where(_OF_ORGANIZATION)
ORDER = Ordering(
    "api_keys",
    (api_keys.c.created_at, api_keys.c.id),
    ("datetime", "uuid"),
    descending=True,
)
ONE = sa.select(api_keys).where(_ONE)
# Revoking keeps the first revocation's time.
REVOKE = (
    api_keys.update()
    .where(_ONE, api_keys.c.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("now"))
)
