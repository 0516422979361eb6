"""The workflow catalog: create, list, rename, delete, duplicate, versions (store.workflows)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from store_helpers import DEFINITION, Workflow, new_step

from stepline.records import StepStatus, WorkflowRecord
from stepline.store import Store, WorkflowNameTakenError, WorkflowNotFoundError, definition_digest
from stepline.store.paging import InvalidCursor, Page


def named(name: str, **fields: Any) -> dict[str, Any]:
    return {**DEFINITION, "name": name, **fields}


async def all_pages(store: Store, org: UUID, limit: int, **filters: Any) -> list[WorkflowRecord]:
    """Follow next_cursor to the end, checking each page's size on the way."""
    seen: list[WorkflowRecord] = []
    after: str | None = None
    while True:
        page = await store.workflows.page(org, limit=limit, after=after, **filters)
        assert len(page.items) <= limit
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        after = page.next_cursor


async def test_create_workflow_starts_at_version_one(store: Store) -> None:
    org = await store.organizations.ensure()
    workspace = uuid4()
    saved = await store.workflows.create(org, DEFINITION, workspace_id=workspace)
    assert saved.created_version
    assert saved.workflow.name == "summarize"
    assert saved.workflow.workspace_id == workspace
    assert saved.version.version == 1
    assert saved.version.digest == definition_digest(DEFINITION)
    assert await store.workflows.get(org, saved.workflow.id) == saved.workflow
    assert await store.workflows.version(saved.workflow.id, 1) == saved.version


async def test_create_workflow_refuses_a_name_in_use(store: Store, workflow: Workflow) -> None:
    with pytest.raises(WorkflowNameTakenError, match=str(workflow.workflow_id)) as caught:
        await store.workflows.create(workflow.organization_id, DEFINITION)
    assert caught.value.holder == workflow.workflow_id
    # Another organization has names of its own.
    other = await store.organizations.ensure("other")
    assert (await store.workflows.create(other, DEFINITION)).workflow.name == "summarize"


async def test_create_workflow_refuses_a_definition_without_name(store: Store) -> None:
    org = await store.organizations.ensure()
    with pytest.raises(ValueError, match="non-empty string"):
        await store.workflows.create(org, {"nodes": []})


async def test_page_workflows_walks_newest_first_without_gaps_or_repeats(store: Store) -> None:
    org = await store.organizations.ensure()
    created = [(await store.workflows.create(org, named(f"wf-{i}"))).workflow for i in range(7)]
    seen = await all_pages(store, org, limit=2)
    assert [w.id for w in seen] == [w.id for w in reversed(created)]
    assert seen == list(reversed(created))


async def test_page_workflows_goes_back_with_before(store: Store) -> None:
    org = await store.organizations.ensure()
    for i in range(5):
        await store.workflows.create(org, named(f"wf-{i}"))
    first = await store.workflows.page(org, limit=2)
    second = await store.workflows.page(org, limit=2, after=first.next_cursor)
    assert first.prev_cursor is None
    assert second.prev_cursor is not None
    back = await store.workflows.page(org, limit=2, before=second.prev_cursor)
    assert back.items == first.items
    assert back.prev_cursor is None
    assert back.next_cursor is not None


async def test_page_workflows_is_scoped_by_organization_workspace_and_deletion(
    store: Store,
) -> None:
    org = await store.organizations.ensure()
    other = await store.organizations.ensure("other")
    workspace = uuid4()
    plain = (await store.workflows.create(org, named("plain"))).workflow
    inside = (await store.workflows.create(org, named("inside"), workspace_id=workspace)).workflow
    gone = (await store.workflows.create(org, named("gone"))).workflow
    await store.workflows.create(other, named("theirs"))
    assert await store.workflows.delete(org, gone.id)

    everything = await store.workflows.page(org, limit=10)
    assert [w.id for w in everything.items] == [inside.id, plain.id]
    assert everything.next_cursor is None
    narrowed = await store.workflows.page(org, workspace_id=workspace, limit=10)
    assert [w.id for w in narrowed.items] == [inside.id]
    assert (await store.workflows.page(org, workspace_id=uuid4(), limit=10)).items == []
    by_name = await store.workflows.page(org, name="plain", limit=10)
    assert [w.id for w in by_name.items] == [plain.id]
    assert (await store.workflows.page(org, name="gone", limit=10)).items == []
    assert (await store.workflows.page(org, name="theirs", limit=10)).items == []


async def test_page_workflows_refuses_a_cursor_of_another_listing(store: Store) -> None:
    org = await store.organizations.ensure()
    saved = await store.workflows.create(org, DEFINITION)
    await store.workflows.save(org, named("summarize", description="v2"))
    versions = await store.workflows.page_versions(org, saved.workflow.id, limit=1)
    assert versions.next_cursor is not None
    with pytest.raises(InvalidCursor, match="workflows"):
        await store.workflows.page(org, limit=1, after=versions.next_cursor)


async def test_latest_definitions_gives_each_workflows_newest(store: Store) -> None:
    org = await store.organizations.ensure()
    first = (await store.workflows.create(org, named("one"))).workflow
    second = (await store.workflows.create(org, named("two"))).workflow
    changed = named("one", description="changed")
    first = (await store.workflows.save(org, changed, workflow_id=first.id)).workflow
    assert first.latest_version == 2
    definitions = await store.workflows.latest_definitions(org, [first, second])
    assert definitions == {first.id: changed, second.id: named("two")}
    other = await store.organizations.ensure("other")
    assert await store.workflows.latest_definitions(other, [first, second]) == {}
    assert await store.workflows.latest_definitions(org, []) == {}


async def test_patch_workflow_renames_without_a_new_version(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    before = await store.workflows.get(org, workflow.workflow_id)
    assert before is not None
    patched = await store.workflows.patch(
        org, workflow.workflow_id, name="digest", description="a new description"
    )
    assert patched.name == "digest"
    assert patched.description == "a new description"
    assert patched.latest_version == 1
    assert patched.updated_at > before.updated_at
    assert patched.created_at == before.created_at
    assert await store.workflows.get(org, workflow.workflow_id) == patched
    assert len(await store.workflows.versions(workflow.workflow_id)) == 1
    assert await store.workflows.find(org, "digest") == patched
    assert await store.workflows.find(org, "summarize") is None


async def test_patch_workflow_with_nothing_new_changes_nothing(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    before = await store.workflows.get(org, workflow.workflow_id)
    assert before is not None
    same = await store.workflows.patch(org, workflow.workflow_id, name=before.name)
    assert same == before
    assert await store.workflows.patch(org, workflow.workflow_id) == before


async def test_patch_workflow_refuses_a_name_another_workflow_has(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    other = (await store.workflows.create(org, named("other"))).workflow
    with pytest.raises(WorkflowNameTakenError, match="'summarize'"):
        await store.workflows.patch(org, other.id, name="summarize")
    unchanged = await store.workflows.get(org, other.id)
    assert unchanged is not None and unchanged.name == "other"
    # A deleted workflow's name is free again.
    assert await store.workflows.delete(org, workflow.workflow_id)
    renamed = await store.workflows.patch(org, other.id, name="summarize")
    assert renamed.name == "summarize"


async def test_patch_workflow_checks_the_name(store: Store, workflow: Workflow) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        await store.workflows.patch(workflow.organization_id, workflow.workflow_id, name="  ")
    with pytest.raises(ValueError, match="at most 200"):
        await store.workflows.patch(workflow.organization_id, workflow.workflow_id, name="x" * 201)


async def test_patch_workflow_of_another_organization_is_not_found(
    store: Store, workflow: Workflow
) -> None:
    other = await store.organizations.ensure("other")
    with pytest.raises(WorkflowNotFoundError):
        await store.workflows.patch(other, workflow.workflow_id, name="stolen")
    with pytest.raises(WorkflowNotFoundError):
        await store.workflows.patch(workflow.organization_id, uuid4(), name="nobody")
    kept = await store.workflows.get(workflow.organization_id, workflow.workflow_id)
    assert kept is not None and kept.name == "summarize"


async def test_delete_workflow_hides_it_and_keeps_its_runs(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    run = await store.runs.create(workflow.run())
    other = await store.organizations.ensure("other")
    assert not await store.workflows.delete(other, workflow.workflow_id)
    assert await store.workflows.get(org, workflow.workflow_id) is not None

    assert await store.workflows.delete(org, workflow.workflow_id)
    assert await store.workflows.get(org, workflow.workflow_id) is None
    assert await store.workflows.find(org, "summarize") is None
    assert not await store.workflows.delete(org, workflow.workflow_id)
    # The run and the version it pins stay: a run in flight finishes.
    assert (await store.runs.get(run.id, org)) is not None
    assert await store.workflows.version(workflow.workflow_id, 1) is not None
    with pytest.raises(WorkflowNotFoundError):
        await store.workflows.save(org, DEFINITION, workflow_id=workflow.workflow_id)
    # The name is free: saving by name makes a new workflow.
    fresh = await store.workflows.save(org, DEFINITION)
    assert fresh.workflow.id != workflow.workflow_id


async def test_duplicate_workflow_copies_the_latest_definition(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    latest = named("summarize", description="second")
    await store.workflows.save(org, latest, workflow_id=workflow.workflow_id)
    copy = await store.workflows.duplicate(org, workflow.workflow_id)
    assert copy.workflow.id != workflow.workflow_id
    assert copy.workflow.name == "summarize (copy)"
    assert copy.workflow.description == "second"
    assert copy.version.version == 1
    assert copy.version.definition == {**latest, "name": "summarize (copy)"}
    assert copy.version.digest == definition_digest(copy.version.definition)
    assert await store.workflows.get(org, copy.workflow.id) == copy.workflow
    again = await store.workflows.duplicate(org, workflow.workflow_id)
    assert again.workflow.name == "summarize (copy 2)"
    third = await store.workflows.duplicate(org, workflow.workflow_id)
    assert third.workflow.name == "summarize (copy 3)"


async def test_duplicate_workflow_keeps_the_workspace(store: Store) -> None:
    org = await store.organizations.ensure()
    workspace = uuid4()
    original = await store.workflows.create(org, DEFINITION, workspace_id=workspace)
    copy = await store.workflows.duplicate(org, original.workflow.id, name="mine")
    assert copy.workflow.workspace_id == workspace
    assert copy.workflow.name == "mine"
    assert copy.version.definition["name"] == "mine"


async def test_duplicate_workflow_with_a_taken_name_conflicts(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    await store.workflows.create(org, named("taken"))
    with pytest.raises(WorkflowNameTakenError, match="'taken'"):
        await store.workflows.duplicate(org, workflow.workflow_id, name="taken")
    other = await store.organizations.ensure("other")
    with pytest.raises(WorkflowNotFoundError):
        await store.workflows.duplicate(other, workflow.workflow_id)


async def test_duplicate_of_a_long_name_stays_within_the_limit(store: Store) -> None:
    org = await store.organizations.ensure()
    original = await store.workflows.create(org, named("n" * 200))
    copy = await store.workflows.duplicate(org, original.workflow.id)
    assert len(copy.workflow.name) == 200
    assert copy.workflow.name.endswith("n (copy)")


async def test_page_versions_newest_first_across_pages(store: Store, workflow: Workflow) -> None:
    org = workflow.organization_id
    for number in range(2, 6):
        changed = named("summarize", description=f"v{number}")
        await store.workflows.save(org, changed, workflow_id=workflow.workflow_id)
    numbers: list[int] = []
    page: Page[Any] = await store.workflows.page_versions(org, workflow.workflow_id, limit=2)
    numbers += [v.version for v in page.items]
    while page.next_cursor is not None:
        page = await store.workflows.page_versions(
            org, workflow.workflow_id, limit=2, after=page.next_cursor
        )
        numbers += [v.version for v in page.items]
    assert numbers == [5, 4, 3, 2, 1]
    back = await store.workflows.page_versions(
        org, workflow.workflow_id, limit=2, before=page.prev_cursor
    )
    assert [v.version for v in back.items] == [3, 2]
    other = await store.organizations.ensure("other")
    assert (await store.workflows.page_versions(other, workflow.workflow_id, limit=10)).items == []


async def test_node_statuses_prefers_a_nodes_own_step(store: Store, workflow: Workflow) -> None:
    run = await store.runs.create(workflow.run())
    await store.steps.insert(
        [
            new_step(run, 0, "fetch", status=StepStatus.completed),
            new_step(run, 1, "loop", status=StepStatus.running),
            new_step(run, 2, "loop_iter_0_body", node_id="body", status=StepStatus.completed),
            new_step(run, 3, "loop_iter_1_body", node_id="body", status=StepStatus.error),
        ]
    )
    statuses = await store.steps.node_statuses(workflow.organization_id, run.id)
    assert statuses == {"fetch": "completed", "loop": "running", "body": "error"}
    other = await store.organizations.ensure("other")
    assert await store.steps.node_statuses(other, run.id) == {}


async def test_names_are_unique_per_workspace_and_among_those_of_no_workspace(
    store: Store,
) -> None:
    org = await store.organizations.ensure()
    here, there = uuid4(), uuid4()
    plain = (await store.workflows.create(org, named("etl"))).workflow
    mine = (await store.workflows.create(org, named("etl"), workspace_id=here)).workflow
    theirs = (await store.workflows.create(org, named("etl"), workspace_id=there)).workflow
    with pytest.raises(WorkflowNameTakenError) as caught:
        await store.workflows.create(org, named("etl"), workspace_id=here)
    assert caught.value.holder == mine.id
    with pytest.raises(WorkflowNameTakenError) as caught:
        await store.workflows.create(org, named("etl"))
    assert caught.value.holder == plain.id
    # A rename or a copy is checked in the workflow's own workspace.
    other = (await store.workflows.create(org, named("other"), workspace_id=there)).workflow
    with pytest.raises(WorkflowNameTakenError) as caught:
        await store.workflows.patch(org, other.id, name="etl")
    assert caught.value.holder == theirs.id
    copy = await store.workflows.duplicate(org, mine.id, name="other")
    assert copy.workflow.workspace_id == here
    # A look-up by name prefers the caller's workspace, then the organization's own.
    assert await store.workflows.find(org, "etl", workspace_id=there) == theirs
    assert await store.workflows.find(org, "etl") == plain
    assert await store.workflows.find(org, "etl", workspace_id=uuid4()) == plain
    by_name = await store.workflows.page(org, name="etl", limit=10)
    assert {w.id for w in by_name.items} == {plain.id, mine.id, theirs.id}


async def test_save_workflow_refuses_a_definition_renaming_onto_a_name_in_use(
    store: Store, workflow: Workflow
) -> None:
    org = workflow.organization_id
    other = (await store.workflows.create(org, named("other"))).workflow
    with pytest.raises(WorkflowNameTakenError) as caught:
        await store.workflows.save(org, named("summarize"), workflow_id=other.id)
    assert caught.value.holder == workflow.workflow_id
    assert await store.workflows.get(org, other.id) == other
    assert len(await store.workflows.versions(other.id)) == 1
    renamed = await store.workflows.save(org, named("free"), workflow_id=other.id)
    assert renamed.workflow.name == "free" and renamed.version.version == 2
    # Saving by name updates the workflow of that name in the given workspace only.
    workspace = uuid4()
    apart = await store.workflows.save(org, named("free"), workspace_id=workspace)
    assert apart.workflow.id != other.id and apart.workflow.workspace_id == workspace
    assert (await store.workflows.save(org, named("free", description="x"))).workflow.id == other.id
