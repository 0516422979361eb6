"""Fixtures for the store's tests (the `store` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

import pytest
from store_helpers import DEFINITION, Workflow

from stepline.store import Store


@pytest.fixture
async def workflow(store: Store) -> Workflow:
    org = await store.organizations.ensure()
    saved = await store.workflows.save(org, DEFINITION)
    return Workflow(org, saved.workflow.id, saved.version.version)
