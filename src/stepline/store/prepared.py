"""Hot-path statements compiled once per dialect and run straight on the DBAPI cursor.

A step's transitions (insert, update) are the store's hottest writes. SQLAlchemy's own
execution of a cached statement still spends more time per call than the database does
(building an execution context, processing each parameter through several layers). A
`Prepared` statement is the same Core statement, compiled by SQLAlchemy once per dialect
with its bind processors (UUID, UTC datetime, JSON) kept aside; executing it is one
pass over the parameters and one cursor call. Driver errors are wrapped into SQLAlchemy's
exceptions (IntegrityError...), as SQLAlchemy's execution would.

Binding is cheaper still than SQLAlchemy's own processing: a None skips a processor that
would return None anyway (most of a step's columns are null), a type may offer a direct
processor (`fast_bind_processor`, e.g. UTC datetimes on SQLite), and a JSON column takes a
`JSONText` (already serialized) as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from stepline.store.types import JSONText

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # (parameter name, bind processor or None, whether the processor leaves None as None),
    # in the order the SQL expects them.
    params: tuple[tuple[str, Processor | None, bool], ...]
    # The values in that order, in one call; then (position, processor, keeps None) of the
    # parameters that have a processor, the only ones left to convert.
    values: Callable[[dict[str, Any]], Any] = field(init=False)
    processed: tuple[tuple[int, Processor, bool], ...] = field(init=False)

    def __post_init__(self) -> None:
        names = [name for name, _, _ in self.params]
        getter: Callable[[dict[str, Any]], Any]
        if len(names) > 1:
            getter = itemgetter(*names)
        else:  # itemgetter of one name gives the value, not a tuple
            getter = partial(_few_values, tuple(names))
        object.__setattr__(self, "values", getter)
        processed = tuple(
            (position, processor, keeps_none)
            for position, (_, processor, keeps_none) in enumerate(self.params)
            if processor is not None
        )
        object.__setattr__(self, "processed", processed)


def _few_values(names: tuple[str, ...], params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in names)


class Prepared:
    """A Core DML statement over a fixed set of parameter names, executed without overhead."""

    def __init__(self, statement: UpdateBase, keys: Sequence[str] = ()) -> None:
        self._statement = statement
        self._keys = list(keys)
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=self._keys)
        names = compiled.positiontup
        if names is None:  # a named paramstyle: pass a dict instead (none of our drivers)
            raise NotImplementedError(f"positional parameters needed, not {dialect.paramstyle}")
        params = []
        for name in names:
            processor = bind_processor(compiled.binds[name].type, dialect)
            params.append((name, processor, processor is None or _keeps_none(processor)))
        return _Compiled(compiled.string, tuple(params))

    def _for(self, conn: sa.Connection) -> _Compiled:
        dialect = conn.dialect
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(dialect)
        return compiled

    def execute(self, conn: sa.Connection, params: dict[str, Any]) -> int:
        """Execute with one set of parameters; return the number of rows it touched."""
        compiled = self._for(conn)
        return _run(conn, compiled.sql, _bind(compiled, params), many=False)

    def executemany(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        compiled = self._for(conn)
        _run(conn, compiled.sql, [_bind(compiled, params) for params in rows], many=True)


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """What converts a value of `type_` for `dialect`'s driver (None: nothing to do)."""
    fast = getattr(type_, "fast_bind_processor", None)
    processor: Processor | None = fast(dialect) if fast is not None else None
    if processor is None:
        impl = type_.dialect_impl(dialect)
        processor = impl.bind_processor(dialect)
        if isinstance(impl, sa.JSON):
            processor = _json_processor(processor)
    return processor


def _json_processor(processor: Processor | None) -> Processor:
    def process(value: Any) -> Any:
        if value.__class__ is JSONText:
            return value.text
        return value if processor is None else processor(value)

    return process


def _keeps_none(processor: Processor) -> bool:
    try:
        return processor(None) is None
    except Exception:
        return False


def _bind(compiled: _Compiled, params: dict[str, Any]) -> list[Any]:
    """The statement's parameter values, in order, converted for the driver."""
    try:
        values = list(compiled.values(params))
        for position, processor, keeps_none in compiled.processed:
            value = values[position]
            if value is not None or not keeps_none:
                values[position] = processor(value)
        return values
    except Exception as exc:
        # As SQLAlchemy reports a value its types refuse (e.g. a naive datetime).
        raise sa.exc.StatementError(str(exc), compiled.sql, params, exc) from exc


def _run(conn: sa.Connection, sql: str, values: Any, *, many: bool) -> int:
    # Through the Connection's own DBAPI connection, inside the transaction it began.
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    error_class = conn.dialect.loaded_dbapi.Error
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
        return int(cursor.rowcount)
    except error_class as exc:
        raise sa.exc.DBAPIError.instance(
            sql, values, exc, error_class, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()
