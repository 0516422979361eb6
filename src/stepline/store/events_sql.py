"""The SQL of run events (`stepline.store.events`)."""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.prepared import Prepared
from stepline.store.tables import run_events

_COLUMNS = ("run_id", "organization_id", "type", "step_uuid", "data", "created_at")
# Inline: no RETURNING of the generated id, nobody reads it back on the write path.
INSERT = Prepared(run_events.insert().inline(), _COLUMNS)

# A run's events after an id (-1: from the first), oldest first.
AFTER = (
    sa.select(run_events)
    .where(
        run_events.c.run_id == sa.bindparam("run_id"),
        run_events.c.organization_id == sa.bindparam("organization_id"),
        run_events.c.id > sa.bindparam("after_id"),
    )
    .order_by(run_events.c.id)
    .limit(sa.bindparam("limit"))
)
