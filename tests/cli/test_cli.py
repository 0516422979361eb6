"""The `stepline` command as a user types it: real subprocesses on a private SQLite home."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from support.cli import stepline, stepline_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRIAGE = str(EXAMPLES / "order-triage.yaml")


def test_run_json_prints_the_run_with_full_step_records(tmp_path: Path) -> None:
    done = stepline(
        "run", TRIAGE, "--input", "amount=700", "--input", "customer=Ada", "--json", home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "completed"
    assert run["output"] == {"message": "Review Ada: risk 0.7"}
    assert run["error"] is None
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["approve"]["status"] == "skipped"
    assert steps["score"]["inputs"]["inputs"] == {"amount": 700}
    for field in (
        "error_stage",
        "tokens",
        "cost",
        "loop_id",
        "iteration_context",
        "trace_spans",
        "human_review_approved",
        "attempts",
        "handle_outputs",
        "retry_count",
    ):
        assert field in steps["score"], field
    assert (tmp_path / "stepline.db").exists()


def test_run_shows_the_step_table_and_output(tmp_path: Path) -> None:
    done = stepline("run", TRIAGE, "-i", "amount=100", "-i", "customer=Bo", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "approve" in done.stdout and "skipped" in done.stdout
    assert '"message": "Approved Bo"' in done.stdout


def test_input_values_are_json_when_they_parse_else_strings(tmp_path: Path) -> None:
    done = stepline("run", TRIAGE, "-i", "amount=700", "-i", "customer=42", "--json", home=tmp_path)
    assert done.returncode == 2
    assert "customer" in done.stderr
    done = stepline(
        "run",
        TRIAGE,
        "--inputs-json",
        '{"customer": "007"}',
        "-i",
        "amount=1",
        "--json",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == {"message": "Approved 007"}


def test_failed_run_exits_1_with_a_readable_error(tmp_path: Path) -> None:
    done = stepline(
        "run",
        str(EXAMPLES / "failing-step.json"),
        "--inputs-json",
        '{"rows": [{"qty": 1}, {"qty": "two"}]}',
        home=tmp_path,
    )
    assert done.returncode == 1
    assert "step 'parse' failed: ValueError: invalid literal for int()" in done.stdout
    assert "upstream failed: parse" in done.stdout


def test_invalid_inputs_exit_2_naming_the_field(tmp_path: Path) -> None:
    done = stepline("run", TRIAGE, "-i", "amount=lots", home=tmp_path)
    assert done.returncode == 2
    assert "amount" in done.stderr and "customer" in done.stderr


def test_invalid_workflow_exits_2_and_validate_lists_every_problem(tmp_path: Path) -> None:
    broken = yaml.safe_load(Path(TRIAGE).read_text())
    broken["nodes"][1]["type"] = "conditionl"
    broken["nodes"].append({"id": "score", "type": "note"})
    broken["edges"].append({"from": "report", "to": "ghost"})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))

    done = stepline("run", str(path), "-i", "amount=1", "-i", "customer=x", home=tmp_path)
    assert done.returncode == 2
    assert "conditionl" in done.stderr

    done = stepline("validate", str(path), home=tmp_path)
    assert done.returncode == 1
    assert "conditionl" in done.stdout
    assert "duplicate" in done.stdout.lower()
    assert "ghost" in done.stdout

    assert stepline("validate", TRIAGE, home=tmp_path).returncode == 0


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    done = stepline("run", str(bad), home=tmp_path)
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr
    assert "Traceback" not in done.stderr
    assert stepline("run", str(tmp_path / "missing.yaml"), home=tmp_path).returncode == 2


def test_schema_is_a_json_schema_the_examples_satisfy(tmp_path: Path) -> None:
    done = stepline("schema", home=tmp_path)
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    workflows = [path for path in EXAMPLES.iterdir() if path.suffix in (".yaml", ".json")]
    assert len(workflows) >= 4
    for example in workflows:  # examples/ also holds a configuration file
        document = yaml.safe_load(example.read_text())
        jsonschema.validate(document, schema)


def test_runs_list_show_and_steps_read_back_the_record(tmp_path: Path) -> None:
    for amount in ("100", "900"):
        done = stepline("run", TRIAGE, "-i", f"amount={amount}", "-i", "customer=C", home=tmp_path)
        assert done.returncode == 0, done.stderr
    runs = stepline_json("runs", "list", home=tmp_path)
    assert [r["inputs"]["amount"] for r in runs] == [900, 100]  # newest first
    shown = stepline_json("runs", "show", runs[1]["id"], home=tmp_path)
    assert shown["output"] == {"message": "Approved C"}
    assert shown["step_counts"] == {"completed": 4, "skipped": 1}
    steps = stepline_json("steps", runs[0]["id"], home=tmp_path)
    assert [s["step_id"] for s in steps] == ["score", "route", "flag", "approve", "report"]
    assert all(s["run_id"] == runs[0]["id"] for s in steps)
    table = stepline("steps", runs[0]["id"], home=tmp_path)
    assert "flag" in table.stdout and "completed" in table.stdout

    missing = stepline("runs", "show", "00000000-0000-0000-0000-000000000000", home=tmp_path)
    assert missing.returncode == 2 and "no run" in missing.stderr
    assert stepline("steps", "not-a-uuid", home=tmp_path).returncode == 2


def test_db_upgrade_creates_the_database(tmp_path: Path) -> None:
    done = stepline("db", "upgrade", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "stepline.db").exists()
    assert stepline("db", "upgrade", home=tmp_path).returncode == 0


def test_a_run_waiting_for_review_exits_3_and_says_what_to_do(tmp_path: Path) -> None:
    inputs = {"requests": [{"customer": "Ada", "amount": 720}, {"customer": "Bo", "amount": 80}]}
    done = stepline(
        "run",
        str(EXAMPLES / "batch-refunds.yaml"),
        "--inputs-json",
        json.dumps(inputs),
        home=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert "waiting_for_human" in done.stdout
    assert "stepline reviews list" in done.stderr
    steps = stepline_json("steps", done.stdout.split("Run ")[1].split()[0], home=tmp_path)
    waiting = [s for s in steps if s["requires_human_review"]]
    assert [s["step_id"] for s in waiting] == ["batch_iter_0_decide"]
    assert waiting[0]["outputs"] == {"customer": "Ada", "amount": 720, "risk": 0.72}


def test_only_a_workflow_with_code_steps_warms_the_sandbox() -> None:
    from stepline.cli.local import has_code_nodes

    code = {"id": "c", "type": "code", "config": {"code": "def main(i):\n    return 1\n"}}
    loop = {"id": "l", "type": "for_each", "config": {"items": [1]}, "body": {"nodes": [code]}}
    assert has_code_nodes({"nodes": [loop]})
    assert has_code_nodes({"nodes": [code]})
    assert not has_code_nodes({"nodes": [{"id": "r", "type": "reshape", "config": {"output": 1}}]})
    assert not has_code_nodes({"nodes": [{"id": "code", "type": "reshape", "config": {}}]})
