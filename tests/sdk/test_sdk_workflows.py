"""Workflows, versions, diagrams, uploads and secrets through both faces of the SDK,
against a real `stepline serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from definitions import triage

from stepline import Client
from stepline.sdk import NotFoundError, Page, Secret, ValidationError, Version, Workflow


def test_workflow_lifecycle(sdk: Client) -> None:
    created = sdk.workflows.create(triage("lifecycle"))
    assert isinstance(created, Workflow)
    assert created.name == "lifecycle" and created.latest_version == 1
    assert created.definition is not None and created.definition["name"] == "lifecycle"

    assert sdk.workflows.get(created.id).id == created.id
    assert [w.id for w in sdk.workflows.list(name="lifecycle")] == [created.id]

    changed = triage("lifecycle")
    changed["description"] = "second version"
    updated = sdk.workflows.update(created.id, changed)
    assert updated.latest_version == 2
    assert updated.definition is not None
    assert updated.definition["description"] == "second version"
    versions = list(sdk.workflows.versions(created.id))
    assert [v.version for v in versions] == [2, 1] and isinstance(versions[0], Version)
    first = sdk.workflows.version(created.id, 1)
    assert first.definition["description"] != "second version" and len(first.digest) == 64

    patched = sdk.workflows.patch(created.id, description="patched")
    assert patched.description == "patched" and patched.latest_version == 2
    renamed = sdk.workflows.patch(created.id, name="lifecycle-renamed")
    assert renamed.name == "lifecycle-renamed" and renamed.description == "patched"

    copy = sdk.workflows.duplicate(created.id, name="lifecycle-copy")
    assert copy.id != created.id and copy.name == "lifecycle-copy"

    sdk.workflows.delete(copy.id)
    with pytest.raises(NotFoundError):
        sdk.workflows.get(copy.id)


def test_diagram_is_mermaid_text_or_a_graph(sdk: Client) -> None:
    workflow = sdk.workflows.create(triage("drawn"))
    mermaid = sdk.workflows.diagram(workflow.id)
    assert mermaid.startswith("flowchart") and "score" in mermaid
    graph = sdk.workflows.diagram(workflow.id, format="json")
    assert {n["id"] for n in graph["nodes"]} == {"score", "route", "flag", "approve", "report"}


def test_validate_reports_every_problem_without_saving(sdk: Client) -> None:
    assert sdk.workflows.validate(triage("v")).valid
    broken = triage("v")
    broken["nodes"].append({"id": "ghost", "type": "teleport"})
    result = sdk.workflows.validate(broken)
    assert not result.valid
    issue = next(i for i in result.errors if i.node_id == "ghost")
    assert issue.code == "unknown_type" and "teleport" in issue.message
    assert list(sdk.workflows.list(name="v")) == []


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_upload_reads_a_yaml_or_json_file(sdk: Client, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"uploaded{suffix}"
    dump = json.dumps if suffix == ".json" else yaml.safe_dump
    path.write_text(dump(triage("uploaded")))
    uploaded = sdk.workflows.upload(path)
    assert uploaded.name == "uploaded" and uploaded.definition == triage("uploaded")


def test_upload_of_a_broken_file_is_a_422_naming_the_file(sdk: Client, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValidationError) as refused:
        sdk.workflows.upload(path)
    assert [d.field for d in refused.value.details] == ["body.file"]


def test_list_follows_cursors_across_pages(sdk: Client) -> None:
    made = {sdk.workflows.create(triage(f"paged-{i}")).id for i in range(7)}
    listing = sdk.workflows.list(page_size=3)
    pages = list(listing.pages())
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert pages[-1].next_cursor is None and pages[0].prev_cursor is None
    seen = [w.id for w in listing]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made
    first = listing.first_page()
    assert isinstance(first, Page) and [w.id for w in first.items] == seen[:3]
    assert first.next_cursor is not None


def test_secrets_set_list_get_and_delete(sdk: Client) -> None:
    created = sdk.secrets.set("SDK_KEY", "s3cret-value")
    assert isinstance(created, Secret)
    assert created.name == "SDK_KEY" and created.workspace_id is None
    assert sdk.secrets.set("SDK_KEY", "again").id == created.id
    assert [s.name for s in sdk.secrets.list()] == ["SDK_KEY"]
    assert "s3cret" not in sdk.secrets.get("SDK_KEY").model_dump_json()
    sdk.secrets.delete("SDK_KEY")
    assert sdk.secrets.list() == []
    with pytest.raises(NotFoundError):
        sdk.secrets.delete("SDK_KEY")
    with pytest.raises(ValidationError) as caught:
        sdk.secrets.set("not valid", "v")
    assert caught.value.details[0].field == "path.name"
