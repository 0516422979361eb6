"""The store: SQLAlchemy Core tables, Alembic migrations, and the verbs on them.

SQLite (embedded default) and PostgreSQL run the same code; see `database` for where
they differ. The engine talks to `Store` only, never to a database driver.
"""

from __future__ import annotations

from stepline.spec.loader import definition_digest
from stepline.store.errors import (
    DuplicateError,
    LeaseLostError,
    NotFoundError,
    RunNotFoundError,
    StateConflictError,
    StepNotFoundError,
    StoreClosedError,
    StoreError,
    WorkflowNameTakenError,
    WorkflowNotFoundError,
)
from stepline.store.saved import SavedWorkflow
from stepline.store.store import Store

__all__ = [
    "DuplicateError",
    "LeaseLostError",
    "NotFoundError",
    "RunNotFoundError",
    "SavedWorkflow",
    "StateConflictError",
    "StepNotFoundError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "WorkflowNameTakenError",
    "WorkflowNotFoundError",
    "definition_digest",
]
