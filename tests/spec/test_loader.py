"""Reading workflow files and fingerprinting definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepline.spec.loader import (
    WorkflowFileError,
    canonical_json,
    definition_digest,
    parse_workflow_text,
    read_workflow_file,
)
from stepline.spec.models import WorkflowSpec


def test_yaml_and_json_files_read_the_same(tmp_path: Path, order_triage: dict) -> None:
    yaml_file = tmp_path / "flow.yaml"
    yaml_file.write_text(
        "name: order-triage\nnodes:\n  - {id: a, type: code, config: {code: x}}\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "flow.json"
    json_file.write_text(json.dumps(read_workflow_file(yaml_file)), encoding="utf-8")
    yml_file = tmp_path / "flow.yml"
    yml_file.write_text(yaml_file.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_workflow_file(json_file) == read_workflow_file(yaml_file)
    assert read_workflow_file(str(yml_file)) == read_workflow_file(yaml_file)
    assert read_workflow_file(yaml_file)["nodes"][0]["config"] == {"code": "x"}


def test_other_extension_is_read_as_yaml_which_covers_json(tmp_path: Path) -> None:
    as_json = tmp_path / "flow.workflow"
    as_json.write_text('{"name": "j"}', encoding="utf-8")
    as_yaml = tmp_path / "flow.txt"
    as_yaml.write_text("name: y\n", encoding="utf-8")
    assert read_workflow_file(as_json) == {"name": "j"}
    assert read_workflow_file(as_yaml) == {"name": "y"}


def test_json_error_names_file_line_and_column() -> None:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow_text('{\n  "name": "x",\n  "nodes": [,]\n}', filename="flow.json")
    assert (caught.value.line, caught.value.column) == (3, 13)
    assert str(caught.value).startswith("flow.json:3:13: invalid JSON")


def test_yaml_error_names_file_line_and_column() -> None:
    text = "name: x\nnodes:\n  - id: a\n   type: code\n"
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow_text(text, filename="flow.yaml")
    assert caught.value.line == 4
    assert str(caught.value).startswith("flow.yaml:4:")
    assert "invalid YAML" in str(caught.value)


def test_json_syntax_in_a_json_file_is_not_read_as_yaml() -> None:
    # YAML would accept this (a plain scalar); a .json file must be real JSON.
    with pytest.raises(WorkflowFileError, match="invalid JSON"):
        parse_workflow_text("name: x", filename="flow.json")


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just text\n", "a str"), ("", "an empty document")],
)
def test_top_level_must_be_a_mapping(text: str, found: str) -> None:
    with pytest.raises(WorkflowFileError, match=f"top level must be a mapping.*not {found}"):
        parse_workflow_text(text, filename="flow.yaml")


def test_yaml_one_one_booleans_and_dates_stay_strings() -> None:
    text = "a: yes\nb: off\nc: on\nd: true\ne: False\nwhen: 2024-05-01\non_error: continue\n"
    assert parse_workflow_text(text, filename="f.yaml") == {
        "a": "yes",
        "b": "off",
        "c": "on",
        "d": True,
        "e": False,
        "when": "2024-05-01",
        "on_error": "continue",
    }


def test_duplicate_yaml_key_is_an_error_with_its_line() -> None:
    text = "name: x\nnodes: []\nname: y\n"
    with pytest.raises(WorkflowFileError, match="duplicate key 'name'") as caught:
        parse_workflow_text(text, filename="f.yaml")
    assert caught.value.line == 3


def test_missing_file_is_workflow_file_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(WorkflowFileError, match="cannot read the file") as caught:
        read_workflow_file(missing)
    assert caught.value.filename == str(missing)


def test_canonical_json_sorts_keys_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "héllo"}}) == (
        '{"a":{"c":"héllo","d":[1,2]},"b":1}'
    )


def test_digest_ignores_key_order_and_sees_changes() -> None:
    first = {"name": "x", "nodes": [{"id": "a", "type": "code"}]}
    reordered = {"nodes": [{"type": "code", "id": "a"}], "name": "x"}
    changed = {"name": "x", "nodes": [{"id": "a", "type": "end"}]}
    assert definition_digest(first) == definition_digest(reordered)
    assert definition_digest(first) != definition_digest(changed)
    assert len(definition_digest(first)) == 64


def test_digest_of_yaml_and_json_spellings_match(order_triage: dict) -> None:
    as_json = parse_workflow_text(json.dumps(order_triage, indent=2), filename="f.json")
    assert definition_digest(as_json) == definition_digest(order_triage)


def test_canonical_json_of_a_model_uses_aliases(order_triage: dict) -> None:
    spec = WorkflowSpec.model_validate(order_triage)
    assert '"from":"score"' in canonical_json(spec)
