"""examples/faq-answer.yaml runs as its header says: the commands are read from the file,
so the example and its instructions cannot drift apart."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from support.cli import stepline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "faq-answer.yaml"


def header_commands() -> list[list[str]]:
    lines = EXAMPLE.read_text().splitlines()
    commands = [line.lstrip("# ").strip() for line in lines if line.startswith("#   stepline ")]
    return [shlex.split(command)[1:] for command in commands]


def test_the_faq_example_answers_from_its_collection(tmp_path: Path) -> None:
    commands = header_commands()
    assert [c[:2] for c in commands] == [
        ["collections", "create"],
        ["collections", "add"],
        ["collections", "add"],
        ["run", "examples/faq-answer.yaml"],
    ]
    for args in commands[:-1]:
        done = stepline(*args, home=tmp_path)
        assert done.returncode == 0, done.stderr

    # The path is the repository's, wherever the tests run from.
    run_args = [str(EXAMPLE) if a == "examples/faq-answer.yaml" else a for a in commands[-1]]
    run = stepline(*run_args, "--json", home=tmp_path)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["status"] == "completed"
    assert document["output"] == {
        "question": "When does the gym open?",
        "best": "The gym opens at six in the morning.",
        "source": "gym",
        "found": 1,
    }
    retrieve = next(s for s in document["steps"] if s["node_id"] == "retrieve")
    assert retrieve["outputs"]["ranking"] == "bm25"
    assert retrieve["handle_outputs"]["output-json-0"]["type"] == "json"

    # A question the collection cannot answer is still a completed run, saying so.
    none = stepline(
        "run", str(EXAMPLE), "--input", "question=stock prices", "--json", home=tmp_path
    )
    assert none.returncode == 0, none.stderr
    assert json.loads(none.stdout)["output"]["best"] == "no passage found"
