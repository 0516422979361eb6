"""The store: SQLAlchemy Core tables, Alembic migrations, and the repositories over them.

`Store` holds one database, its single writer, the run bell and a repository per concept,
each with its SQL in one named place beside it:

| attribute | repository | SQL |
| --- | --- | --- |
| `store.organizations` | `organizations.py` | `organizations_sql.py` |
| `store.keys` | `keys.py` (API keys) | `keys_sql.py` |
| `store.workflows` | `workflows.py` (with `workflow_names`, `saved`) | `workflows_sql.py` |
| `store.runs` | `runs/` (lifecycle, listings, cancel, control) | `runs/sql.py` |
| `store.steps` | `steps.py` | `steps_sql.py`, `step_json.py` |
| `store.events` | `events.py` | `events_sql.py` |
| `store.secrets` | `secrets.py` | `secrets_sql.py` |
| `store.files` | `files.py` | `files_sql.py` |
| `store.collections` | `collections.py` | `collections_sql.py` |
| `store.workers` | `workers.py` (the fleet's registry) | `workers_sql.py` |

A write that spans concepts (finishing a run wakes its parent; a cancel stops the run's
steps) stays one transaction in the repository that owns the verb, calling the other's
shared helpers (`steps.step_write`, `events.insert_run_event`...); dependencies point one
way (runs -> steps -> events), so nothing imports in a loop. Driver errors a verb expects
become `StoreError`s at the repositories' boundary (`errors.translate`).

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
