"""Workflow files are documents: YAML's depth held while it is read, files bounded in size."""

from __future__ import annotations

import time

import pytest

from stepline.documents import DocumentLimits
from stepline.spec.loader import WorkflowFileError, parse_workflow_text

DEEP = 10_000
HEAD = "name: deep\nnodes:\n  - id: a\n    type: reshape\n    config:\n      output: "

HOSTILE_YAML = {
    "flow-sequences": HEAD + "[" * DEEP + "]" * DEEP + "\n",
    "flow-mappings": HEAD + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
    "compact-sequences": HEAD + "\n" + "        " + "- " * DEEP + "x\n",
    "block-mappings": HEAD
    + "\n"
    + "".join(" " * (8 + i) + "k:\n" for i in range(2000))
    + " " * 2008
    + "x\n",
    "json": "[" * DEEP + "]" * DEEP,
}


def refusal(text: str, filename: str = "deep.yaml", **limits: int) -> WorkflowFileError:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow_text(text, filename=filename, limits=DocumentLimits(**limits))
    return caught.value


@pytest.mark.parametrize("name", list(HOSTILE_YAML))
def test_a_10000_level_document_is_refused_in_milliseconds(name: str) -> None:
    filename = "deep.json" if name == "json" else "deep.yaml"
    started = time.perf_counter()
    error = refusal(HOSTILE_YAML[name], filename)
    elapsed = time.perf_counter() - started
    assert "nested deeper than 64 levels" in str(error)
    assert "STEPLINE_MAX_DOCUMENT_DEPTH" in str(error)
    assert not error.too_large
    assert elapsed < 0.2, f"{elapsed:.3f} s"


def test_yaml_up_to_the_limit_reads_and_the_error_points_at_the_first_level_past_it() -> None:
    # The definition, its nodes, the node, its config: 4 levels before the output.
    fits = HEAD + "[" * 60 + "]" * 60 + "\n"
    assert parse_workflow_text(fits, filename="ok.yaml")["nodes"][0]["config"]["output"]
    error = refusal(HEAD + "[" * 61 + "]" * 61 + "\n")
    assert error.line == 6
    assert error.column == len("      output: ") + 61


def test_yaml_values_json_cannot_keep_are_refused() -> None:
    error = refusal(HEAD + ".nan\n")
    assert "$.nodes[0].config.output: NaN is not a JSON number" in str(error)


def test_aliases_expanding_past_the_size_limit_are_refused_fast() -> None:
    lines = ["name: bomb", "a0: &a0 [" + ", ".join(["xxxxxxxxxx"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    started = time.perf_counter()
    error = refusal("\n".join(lines) + "\n")
    assert error.too_large
    assert "STEPLINE_MAX_DEFINITION_BYTES" in str(error)
    assert time.perf_counter() - started < 1


def test_a_definition_over_the_size_limit_is_too_large() -> None:
    text = "name: big\ndescription: " + "x" * 2000 + "\n"
    error = refusal(text, max_definition_bytes=1000)
    assert error.too_large
    assert "over the limit of 1,000" in str(error)
