"""Seed 004's workflow as shipped (examples/invoice-documents.yaml: an invoice PDF ->
extract -> split), run offline with `stepline run` against the OpenAI-compatible stand-in,
the shipped examples/invoice.pdf stored as a file of the local organization first; its
steps recorded in seed 004's shape (handle_inputs, handle_outputs, input_document,
split_documents), with model, tokens and cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.cli import cli_env, stepline
from support.openai_server import Answer, openai_stand_in
from support.pdfs import page_texts

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = Path("/work/shared/seeds/004_47dd8f7297e7bdb4.txt")
FIELDS = {
    "invoice_number": "INV-2024-001",
    "invoice_date": "2024-03-01",
    "customer": "Globex Ltd",
    "total_amount": 1234.56,
    "currency": "EUR",
}

# Seed 004's example steps, as its documentation shows them (the shapes compared below).
SEED_EXTRACT: dict[str, Any] = {
    "output": {"invoice_number": "INV-2024-001", "total_amount": 1234.56},
    "handle_outputs": {
        "output-json-0": {
            "type": "json",
            "data": {"invoice_number": "INV-2024-001", "total_amount": 1234.56},
        }
    },
    "handle_inputs": {
        "input-file-0": {
            "type": "file",
            "document": {
                "file_id": "file_123",
                "filename": "invoice.pdf",
                "mime_type": "application/pdf",
            },
        }
    },
}
SEED_SPLIT_OUTPUT = {
    "type": "file",
    "document": {
        "file_id": "file_456",
        "filename": "invoice_page_1.pdf",
        "mime_type": "application/pdf",
    },
}


def shape(value: Any) -> Any:
    """The value's shape: its keys, recursively, and its leaves' types."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def store_invoice(home: Path) -> dict[str, str]:
    """examples/invoice.pdf stored as the README says (examples/store_file.py), as a file
    of the organization `stepline run` uses; the reference it prints."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "store_file.py"), str(EXAMPLES / "invoice.pdf")],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reference: dict[str, str] = json.loads(done.stdout)
    return reference


def test_seed_004_runs_offline_and_records_its_steps_in_seed_004s_shape(tmp_path: Path) -> None:
    home = tmp_path / "home"
    saved = store_invoice(home)
    config = tmp_path / "stepline.toml"
    with openai_stand_in() as provider:
        config.write_text(
            (EXAMPLES / "stepline.toml")
            .read_text()
            .replace("http://127.0.0.1:8901/v1", provider.base_url)
        )
        provider.script(Answer(json_content=FIELDS))
        done = stepline(
            "run",
            str(EXAMPLES / "invoice-documents.yaml"),
            "-i",
            "invoice=" + json.dumps(saved),
            "--json",
            home=home,
            STEPLINE_CONFIG=str(config),
        )
        (request,) = provider.completions

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "completed"
    steps = {step["node_id"]: step for step in document["steps"]}
    extract, split = steps["extract"], steps["split"]
    pdf = {"file_id": saved["file_id"], "filename": "invoice.pdf", "mime_type": "application/pdf"}

    # The model was shown the PDF's text, page by page.
    content = request.body["messages"][1]["content"]
    assert "Invoice number: INV-2024-001" in content
    assert "--- Page 3 ---\nTERMS AND CONDITIONS" in content

    # extract: seed 004's fields, in its shapes.
    assert extract["status"] == "completed"
    assert extract["outputs"] == FIELDS
    assert extract["handle_outputs"] == {"output-json-0": {"type": "json", "data": FIELDS}}
    assert extract["handle_inputs"] == {"input-file-0": {"type": "file", "document": pdf}}
    assert extract["input_document"] == pdf
    assert shape(extract["handle_inputs"]) == shape(SEED_EXTRACT["handle_inputs"])
    assert shape(extract["handle_outputs"]["output-json-0"]["data"]) == {
        **shape(SEED_EXTRACT["handle_outputs"]["output-json-0"]["data"]),
        "invoice_date": "str",
        "customer": "str",
        "currency": "str",
    }
    assert extract["model"] == "stand-in-small"
    tokens = extract["tokens"]
    assert tokens["total"] == tokens["prompt"] + tokens["completion"] > 0
    assert extract["cost"]["currency"] == "USD" and float(extract["cost"]["total"]) > 0

    # split: one file per sub-document, on handles named after them.
    assert split["status"] == "completed"
    assert split["handle_inputs"] == {"input-file-0": {"type": "file", "document": pdf}}
    assert split["input_document"] == pdf
    assert set(split["handle_outputs"]) == {"output-file-Invoice", "output-file-Terms"}
    assert set(split["split_documents"]) == {"Invoice", "Terms"}
    for name, made in split["split_documents"].items():
        handle = split["handle_outputs"][f"output-file-{name}"]
        assert handle == {"type": "file", "document": made}
        assert shape(handle) == shape(SEED_SPLIT_OUTPUT)
        assert made["filename"] == f"invoice_{name}.pdf"
        assert made["mime_type"] == "application/pdf" and made["file_id"] != saved["file_id"]
    assert document["output"]["fields"] == FIELDS

    # The sub-documents are real PDFs of the pages named.
    invoice = split["split_documents"]["Invoice"]["file_id"]
    terms = split["split_documents"]["Terms"]["file_id"]
    files = home / "files"
    blobs = {path.read_bytes() for path in files.rglob("*") if path.is_file()}
    texts = [page_texts(blob) for blob in blobs if blob.startswith(b"%PDF")]
    assert sorted(len(pages) for pages in texts) == [1, 2, 3]
    assert any(pages[0].startswith("TERMS AND CONDITIONS") for pages in texts if len(pages) == 1)
    assert invoice != terms


@pytest.mark.skipif(not SEED.exists(), reason="seed 004 is not on this machine")
def test_the_seeds_example_steps_are_the_shapes_compared_here() -> None:
    """The shapes above are seed 004's: its example's extract and split steps."""
    text = SEED.read_text()
    start = text.index("[")
    steps, _ = json.JSONDecoder().raw_decode(text[start:])
    extract, split = steps
    for key in ("output", "handle_outputs", "handle_inputs"):
        assert extract[key] == SEED_EXTRACT[key]
    assert split["handle_outputs"]["output-file-Invoice"] == SEED_SPLIT_OUTPUT
    # The step's fields this run records, as the seed lists them.
    for name in ("handle_inputs", "handle_outputs", "input_document", "split_documents"):
        assert re.search(rf"^{name}\n", text, re.M), name


def test_the_committed_invoice_pdf_is_what_its_script_makes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_invoice_pdf", EXAMPLES / "make_invoice_pdf.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == (EXAMPLES / "invoice.pdf").read_bytes()
    assert len(page_texts(module.build())) == 3
