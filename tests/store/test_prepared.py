"""Prepared statements bind exactly what SQLAlchemy's own processing would, only cheaper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import create_async_engine
from store_helpers import DEFINITION, new_step

from stepline.records import (
    Attempt,
    ErrorCategory,
    ErrorDetails,
    RunRecord,
    StepRecord,
    StepStatus,
    TokenUsage,
    new_id,
)
from stepline.store import events_sql, mapping, steps_sql
from stepline.store.database import ENGINE_OPTIONS, json_dumps
from stepline.store.events import step_event_params
from stepline.store.prepared import Prepared, _bind
from stepline.store.tables import organizations
from stepline.store.types import JSONText, UTCDateTime


def _sqlite() -> Dialect:
    return sa.create_engine("sqlite://", **ENGINE_OPTIONS).dialect


def _postgres() -> Dialect:
    # No connection is made: the dialect alone compiles and binds.
    return create_async_engine("postgresql+asyncpg://u@h/db", **ENGINE_OPTIONS).sync_engine.dialect


DIALECTS = [pytest.param(_sqlite, id="sqlite"), pytest.param(_postgres, id="postgres")]

TIMES = [
    datetime(2026, 11, 23, 16, 33, 1, 123456, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: still written out
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-8))),
]


def _step() -> StepRecord:
    run = RunRecord(workflow_id=new_id(), workflow_version=1, organization_id=new_id())
    step = new_step(run, 3)
    step.status = StepStatus.error
    step.started_at = TIMES[0]
    step.completed_at = TIMES[3]
    step.inputs = {"definition": DEFINITION, "when": "now"}
    step.outputs = [1, "two", None]
    step.error = "boom"
    step.error_category = ErrorCategory.transient
    step.error_details = ErrorDetails(type="ValueError", message="boom", context={"a": [1]})
    step.tokens = TokenUsage(prompt=3, completion=4, total=7)
    step.attempts = [
        Attempt(number=1, started_at=TIMES[0], status=StepStatus.error, error="boom"),
        Attempt(number=2, started_at=TIMES[1], status=StepStatus.running),
    ]
    step.step_metadata = {"at": TIMES[4], "id": step.id}
    return step


def _reference(prepared: Prepared, dialect: Dialect, params: dict[str, Any]) -> list[Any]:
    """The values as SQLAlchemy's own bind processing of the compiled statement gives them."""
    compiled = prepared._statement.compile(dialect=dialect, column_keys=prepared._keys)
    assert compiled.positiontup is not None
    values = []
    for name in compiled.positiontup:
        type_ = compiled.binds[name].type
        processor = type_.dialect_impl(dialect).bind_processor(dialect)
        value = params[name]
        values.append(value if processor is None else processor(value))
    return values


def _dumped(row: dict[str, Any], step: StepRecord) -> dict[str, Any]:
    """`row` with its nested models as model_dump(mode="json"), as SQLAlchemy would take it."""
    out = {}
    for name, value in row.items():
        if isinstance(value, JSONText):
            source = getattr(step, name)
            value = (
                [item.model_dump(mode="json") for item in source]
                if isinstance(source, list)
                else source.model_dump(mode="json")
            )
        out[name] = value
    return out


@pytest.mark.parametrize("make_dialect", DIALECTS)
@pytest.mark.parametrize("which", ["update", "insert", "event"])
def test_binding_matches_sqlalchemy(make_dialect: Any, which: str) -> None:
    dialect = make_dialect()
    step = _step()
    prepared, params = {
        "update": (steps_sql.UPDATE, mapping.step_update_params(step)),
        "insert": (steps_sql.INSERT, mapping.step_to_row(step)),
        "event": (events_sql.INSERT, step_event_params(step)),
    }[which]
    assert _bind(prepared._compile(dialect), params) == _reference(
        prepared, dialect, _dumped(params, step)
    )


def test_nested_models_are_serialized_once_as_their_json() -> None:
    step = _step()
    params = mapping.step_update_params(step)
    assert params["attempts"] == JSONText(
        json_dumps([attempt.model_dump(mode="json") for attempt in step.attempts])
    )
    assert params["error_details"] == JSONText(
        json_dumps(step.error_details.model_dump(mode="json"))
    )
    assert params["cost"] is None
    step.attempts = []
    assert mapping.step_update_params(step)["attempts"] == []


def test_a_submitted_write_keeps_its_nested_models_as_they_were() -> None:
    step = _step()
    params = mapping.step_update_params(step)
    step.attempts[-1].status = StepStatus.completed
    assert '"status":"running"' in params["attempts"].text


@pytest.mark.parametrize("value", TIMES)
def test_utc_datetimes_are_written_as_sqlalchemy_writes_them_on_sqlite(value: datetime) -> None:
    dialect = _sqlite()
    type_ = UTCDateTime()
    slow = type_.dialect_impl(dialect).bind_processor(dialect)
    fast = type_.fast_bind_processor(dialect)
    assert slow is not None and fast is not None
    assert fast(value) == slow(value)
    assert fast(None) is None


def test_utc_datetime_refusals_are_kept_on_sqlite() -> None:
    fast = UTCDateTime().fast_bind_processor(_sqlite())
    assert fast is not None
    with pytest.raises(ValueError, match="naive datetime"):
        fast(datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="expected a datetime"):
        fast("2026-01-01")


def test_postgres_keeps_sqlalchemy_datetime_processing() -> None:
    assert UTCDateTime().fast_bind_processor(_postgres()) is None


def test_json_text_is_refused_outside_prepared_statements() -> None:
    # Stored through SQLAlchemy's JSON type it would become a JSON string: it must fail.
    with pytest.raises(Exception, match="JSONText"):
        json_dumps(JSONText("[]"))


@pytest.mark.parametrize("make_dialect", DIALECTS)
def test_a_statement_of_one_parameter_binds_a_list_of_one(make_dialect: Any) -> None:
    statement = organizations.delete().where(organizations.c.name == sa.bindparam("n"))
    assert _bind(Prepared(statement)._compile(make_dialect()), {"n": "acme"}) == ["acme"]
