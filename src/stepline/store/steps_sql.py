"""The SQL of steps (`stepline.store.steps`); their JSON documents' SQL, each database's
own, is in `stepline.store.step_json`.

`INSERT` and `UPDATE`, a step's transitions, are the hot path: `Prepared` (compiled once
per dialect, executed straight on the driver's cursor).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from stepline.store.mapping import STEP_COLUMNS, STEP_MUTABLE_COLUMNS
from stepline.store.prepared import Prepared
from stepline.store.step_json import IO_COLUMNS, documents_select
from stepline.store.tables import steps

INSERT = Prepared(steps.insert(), STEP_COLUMNS)
# Sets the mutable columns (mapping.step_update_params) of the step whose id is step_uuid.
UPDATE = Prepared(
    steps.update().where(steps.c.id == sa.bindparam("step_uuid")), STEP_MUTABLE_COLUMNS
)
BY_UUID = sa.select(steps).where(steps.c.id == sa.bindparam("step_uuid"))
_IN_ORDER = (steps.c.order_key, steps.c.step_id)
OF_RUN = sa.select(steps).where(steps.c.run_id == sa.bindparam("run_id")).order_by(*_IN_ORDER)
COUNTS = (
    sa.select(steps.c.status, sa.func.count())
    .where(steps.c.run_id == sa.bindparam("run_id"))
    .group_by(steps.c.status)
)
COUNTS_OF_RUNS = (
    sa.select(steps.c.run_id, steps.c.status, sa.func.count())
    .where(steps.c.run_id.in_(sa.bindparam("run_ids", expanding=True)))
    .group_by(steps.c.run_id, steps.c.status)
)
_OF_RUN_IN_ORGANIZATION = sa.and_(
    steps.c.run_id == sa.bindparam("run_id"),
    steps.c.organization_id == sa.bindparam("organization_id"),
)
# One step of a run, by its record's UUID or by its step_id.
IN_RUN_BY_UUID = sa.select(steps).where(
    _OF_RUN_IN_ORGANIZATION, steps.c.id == sa.bindparam("step_uuid")
)
IN_RUN_BY_STEP_ID = sa.select(steps).where(
    _OF_RUN_IN_ORGANIZATION, steps.c.step_id == sa.bindparam("step_id")
)
# Three columns per step, in execution order: what a run's diagram colours its nodes by.
NODE_STATUSES = (
    sa.select(steps.c.node_id, steps.c.step_id, steps.c.status)
    .where(_OF_RUN_IN_ORGANIZATION)
    .order_by(*_IN_ORDER)
)
_WITHOUT_IO = tuple(c for c in steps.c if c.name not in IO_COLUMNS)


def of_run(*, include_io: bool) -> sa.Select[Any]:
    """A run's steps ("run_id", "organization_id"), their I/O columns read or not."""
    columns = list(steps.c) if include_io else list(_WITHOUT_IO)
    return sa.select(*columns).where(_OF_RUN_IN_ORGANIZATION)


def filtered(query: sa.Select[Any], filters: dict[str, Any]) -> sa.Select[Any]:
    """`query`'s steps whose columns have the values of `filters` (by column name)."""
    for name, value in filters.items():
        query = query.where(steps.c[name] == value)
    return query


def in_order(query: sa.Select[Any], chunk: int) -> sa.Select[Any]:
    """`query`'s first `chunk` steps in execution order (`after` bounds the next ones)."""
    return query.order_by(*_IN_ORDER).limit(chunk)


def after(last: tuple[Any, ...]) -> sa.ColumnElement[bool]:
    """Steps that sort after the key (order_key, step_id)."""
    key, step_id = last
    bound = sa.tuple_(
        sa.literal(key, type_=steps.c.order_key.type),
        sa.literal(step_id, type_=steps.c.step_id.type),
    )
    return sa.tuple_(*_IN_ORDER) > bound


def documents(dialect: str, *, include_io: bool) -> sa.Select[Any]:
    """A run's steps ("run_id", "organization_id") as JSON documents (`step_json`)."""
    return documents_select(dialect, include_io=include_io).where(_OF_RUN_IN_ORGANIZATION)
