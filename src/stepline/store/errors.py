"""The store's errors: one base, each naming what is missing or whose it is, and each
also one of `stepline.errors`' kinds (in brackets), which tells every edge how to report it.

StoreError
├── NotFoundError [NotFound]
│   ├── WorkflowNotFoundError
│   ├── RunNotFoundError
│   └── StepNotFoundError
├── LeaseLostError [Conflict]          the run's lease belongs to another worker now
├── StoreClosedError [Unavailable]     a write was submitted after Store.close()
├── StateConflictError [Conflict]      the record's state does not allow the change
│   └── DuplicateError                 a unique index refused the row (the driver's
│                                      IntegrityError, translated here at the boundary)
└── WorkflowNameTakenError [Conflict]  another live workflow of the scope has the name

`translate` is where a driver error the store expects becomes one of these: every
repository's reads and writes pass through it (`stepline.store.repository`), so no driver
error type leaves the store but those of an outage. `is_outage` tells the failures of the
database itself (worth trying again later) from those of what was asked of it (the same
request fails again).
"""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from stepline.errors import Conflict, NotFound, SteplineError, Unavailable


class StoreError(SteplineError):
    """Base of every error the store raises on purpose (unexpected driver errors pass
    through; those the store expects, such as a unique index refusing a name, become one
    of these)."""


class NotFoundError(StoreError, NotFound):
    """A row the caller named does not exist (or not in the caller's organization)."""


class WorkflowNotFoundError(NotFoundError):
    pass


class RunNotFoundError(NotFoundError):
    pass


class StepNotFoundError(NotFoundError):
    pass


class LeaseLostError(StoreError, Conflict):
    """The worker no longer holds the run's lease: another worker claimed it."""


class StoreClosedError(StoreError, Unavailable):
    """The store was closed; open a new one with Store.connect()."""


class StateConflictError(StoreError, Conflict):
    """The record's current state does not allow the change (e.g. a second, different review)."""


class DuplicateError(StateConflictError):
    """A unique index refused the write (another request made the same row first)."""


class WorkflowNameTakenError(StoreError, Conflict):
    """Another live workflow of the same workspace (or of the organization, for workflows of
    no workspace) already has this name; `holder` is its id."""

    def __init__(self, name: str, holder: UUID) -> None:
        super().__init__(f"workflow name {name!r} is already used by workflow {holder}")
        self.name = name
        self.holder = holder


def is_outage(exc: BaseException) -> bool:
    """Whether a store call failed because the database could not be used (unreachable,
    locked, closed, a connection lost) rather than because of the data it was given.

    What is not an outage is the request's own: it would fail the same way again.
    """
    if isinstance(exc, StoreClosedError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    # Operational: the server or file (gone, locked, out of space, shutting down);
    # Interface: the driver's connection; TimeoutError: no pooled connection in time.
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError)


ConstraintRefused = sa.exc.IntegrityError
"""The driver's error when a constraint refuses a write: the only one the store catches
below its boundary (a savepoint's write, `workflow_names`), and translates at it."""


def translate(exc: sa.exc.IntegrityError) -> StateConflictError:
    """The store's error for a constraint refusing a write: DuplicateError for a unique
    index, StateConflictError for any other (a foreign key, a check)."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if _is_unique_violation(exc):
        return DuplicateError(f"a unique index refused the write: {reason}")
    return StateConflictError(f"the database refused the write: {reason}")


def _is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    orig = exc.orig
    # asyncpg's UniqueViolationError (SQLSTATE 23505), or SQLite's constraint message.
    if getattr(orig, "sqlstate", None) == "23505" or getattr(orig, "pgcode", None) == "23505":
        return True
    return "UNIQUE constraint failed" in str(orig) or "duplicate key" in str(orig)
