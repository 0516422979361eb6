"""The store's errors: one base, each naming what is missing or whose it is.

StoreError
├── NotFoundError (also a LookupError)
│   ├── WorkflowNotFoundError
│   ├── RunNotFoundError
│   └── StepNotFoundError
├── LeaseLostError      the run's lease belongs to another worker now
└── StoreClosedError    a write was submitted after Store.close()
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose (driver errors pass through)."""


class NotFoundError(StoreError, LookupError):
    """A row the caller named does not exist (or not in the caller's organization)."""


class WorkflowNotFoundError(NotFoundError):
    pass


class RunNotFoundError(NotFoundError):
    pass


class StepNotFoundError(NotFoundError):
    pass


class LeaseLostError(StoreError):
    """The worker no longer holds the run's lease: another worker claimed it."""


class StoreClosedError(StoreError):
    """The store was closed; open a new one with Store.connect()."""


class StateConflictError(StoreError):
    """The record's current state does not allow the change (e.g. a second, different review)."""
