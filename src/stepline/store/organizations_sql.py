"""The SQL of organizations (`stepline.store.organizations`).

`EXISTS` is also what the repositories of an organization's things (keys, secrets,
files, collections) ask before they insert one.
"""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.tables import api_keys, organizations

BY_ID = sa.select(organizations).where(organizations.c.id == sa.bindparam("organization_id"))
BY_NAME = sa.select(organizations).where(organizations.c.name == sa.bindparam("name"))
ID_BY_NAME = sa.select(organizations.c.id).where(organizations.c.name == sa.bindparam("name"))
EXISTS = sa.select(organizations.c.id).where(organizations.c.id == sa.bindparam("organization_id"))
INSERT = organizations.insert()
COUNT = sa.select(sa.func.count()).select_from(organizations)
COUNT_KEYS = sa.select(sa.func.count()).select_from(api_keys)
