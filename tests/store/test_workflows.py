"""Organizations, workflows and their versions."""

from __future__ import annotations

import copy
from datetime import UTC
from uuid import uuid4

import pytest
from store_helpers import DEFINITION, Workflow

from stepline.store import Store, WorkflowNotFoundError, definition_digest


async def test_ensure_organization_returns_the_same_id_for_the_same_name(store: Store) -> None:
    first = await store.organizations.ensure()
    assert await store.organizations.ensure("default") == first
    assert await store.organizations.ensure("other") != first


async def test_first_save_creates_workflow_at_version_one(store: Store) -> None:
    org = await store.organizations.ensure()
    saved = await store.workflows.save(org, DEFINITION)
    assert saved.created_version
    assert saved.workflow.name == "summarize"
    assert saved.workflow.description == "fetch and summarize a page"
    assert saved.workflow.latest_version == 1
    assert saved.version.version == 1
    assert saved.version.definition == DEFINITION
    assert saved.version.digest == definition_digest(DEFINITION)
    assert await store.workflows.get(org, saved.workflow.id) == saved.workflow
    assert await store.workflows.version(saved.workflow.id, 1) == saved.version


async def test_saving_the_same_definition_again_keeps_the_version(store: Store) -> None:
    org = await store.organizations.ensure()
    first = await store.workflows.save(org, DEFINITION)
    # Same content, different key order: the digest is over canonical JSON.
    again = await store.workflows.save(org, dict(reversed(list(DEFINITION.items()))))
    assert not again.created_version
    assert again.workflow.id == first.workflow.id
    assert again.version == first.version
    assert await store.workflows.versions(first.workflow.id) == [first.version]


async def test_changed_definition_becomes_the_next_version(store: Store) -> None:
    org = await store.organizations.ensure()
    first = await store.workflows.save(org, DEFINITION)
    changed = copy.deepcopy(DEFINITION)
    changed["description"] = "summarize, shorter"
    second = await store.workflows.save(org, changed)
    assert second.created_version
    assert second.workflow.id == first.workflow.id
    assert second.version.version == 2
    assert second.workflow.latest_version == 2
    assert second.workflow.description == "summarize, shorter"
    stored = await store.workflows.get(org, first.workflow.id)
    assert stored == second.workflow
    assert [v.version for v in await store.workflows.versions(first.workflow.id)] == [1, 2]
    # The old version stays readable: runs pin it.
    assert (await store.workflows.version(first.workflow.id, 1)) == first.version


async def test_save_with_workflow_id_versions_that_workflow_even_if_renamed(store: Store) -> None:
    org = await store.organizations.ensure()
    first = await store.workflows.save(org, DEFINITION)
    renamed = {**DEFINITION, "name": "digest"}
    saved = await store.workflows.save(org, renamed, workflow_id=first.workflow.id)
    assert saved.workflow.id == first.workflow.id
    assert saved.workflow.name == "digest"
    assert saved.version.version == 2
    assert await store.workflows.find(org, "digest") == saved.workflow
    assert await store.workflows.find(org, "summarize") is None


async def test_save_with_unknown_workflow_id_is_not_found(store: Store) -> None:
    org = await store.organizations.ensure()
    with pytest.raises(WorkflowNotFoundError, match="not found in organization"):
        await store.workflows.save(org, DEFINITION, workflow_id=uuid4())


async def test_definition_without_name_is_refused(store: Store) -> None:
    org = await store.organizations.ensure()
    with pytest.raises(ValueError, match="'name' must be a non-empty string"):
        await store.workflows.save(org, {"nodes": []})


async def test_workflows_are_scoped_to_their_organization(store: Store) -> None:
    acme = await store.organizations.ensure("acme")
    other = await store.organizations.ensure("other")
    saved = await store.workflows.save(acme, DEFINITION)
    assert await store.workflows.get(other, saved.workflow.id) is None
    assert await store.workflows.find(other, "summarize") is None
    # The same name in another organization is another workflow.
    theirs = await store.workflows.save(other, DEFINITION)
    assert theirs.workflow.id != saved.workflow.id


async def test_run_pins_the_version_it_was_created_with(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    changed = {**DEFINITION, "description": "v2"}
    await store.workflows.save(workflow.organization_id, changed)
    stored = await store.runs.get(run.id)
    assert stored is not None
    assert stored.workflow_version == 1
    pinned = await store.workflows.version(workflow.workflow_id, stored.workflow_version)
    assert pinned is not None and pinned.definition == DEFINITION


async def test_workflow_timestamps_come_back_utc(store: Store, workflow: Workflow) -> None:
    stored = await store.workflows.get(workflow.organization_id, workflow.workflow_id)
    assert stored is not None
    assert stored.created_at.tzinfo == UTC
    version = await store.workflows.version(workflow.workflow_id, 1)
    assert version is not None and version.created_at.tzinfo == UTC
