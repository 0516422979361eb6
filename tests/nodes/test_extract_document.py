"""`extract` over a document (engine, worker, real store and file storage, the stand-in
provider): a real multi-page invoice PDF's text reaches the model, and the step records
the file as seed 004's extract step shows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepline.records import ErrorStage, RunStatus, StepStatus
from stepline.settings import get_settings
from stepline.store import Store
from support.documents import DocumentBench, document, handle
from support.model_nodes import MODEL
from support.openai_server import Answer, StandIn, openai_stand_in
from support.pdfs import build_pdf

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total_amount": {"type": "number"},
    },
    "required": ["invoice_number", "total_amount"],
}
GOOD = {"invoice_number": "INV-2024-001", "total_amount": 1234.56}
INVOICE_PAGES = [
    "ACME Corp - Invoice INV-2024-001",
    "Widgets: 10 x 100.00 = 1000.00",
    "Total due: 1234.56 EUR",
]


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in() as running:
        yield running


@pytest.fixture
def configured(server: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stand-in as provider `local` (priced) of the configuration file."""
    path = tmp_path / "stepline.toml"
    path.write_text(
        f"""
[providers.local]
base_url = "{server.base_url}"
default_model = "{MODEL}"

[providers.local.prices."{MODEL}"]
prompt = 0.15
completion = 0.6
"""
    )
    monkeypatch.setenv("STEPLINE_CONFIG", str(path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def bench(store: Store, tmp_path: Path, configured: None) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


def extract(**config: Any) -> dict[str, Any]:
    return {
        "id": "extract",
        "type": "extract",
        "config": {"provider": "local", "document": "{{ inputs.doc }}", "schema": SCHEMA, **config},
    }


async def test_the_pdfs_text_reaches_the_model_and_the_step_records_the_file(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(build_pdf(INVOICE_PAGES, title="Invoice"), "invoice.pdf")
    server.script(Answer(json_content=GOOD, usage={"prompt_tokens": 90, "completion_tokens": 10}))
    out = await bench.run([extract()], {"doc": {"file_id": str(saved.id)}})
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["extract"]

    (request,) = server.completions
    content = request.body["messages"][1]["content"]
    assert content.startswith("Document 'invoice.pdf' (application/pdf, 3 pages):")
    for number, text in enumerate(INVOICE_PAGES, start=1):
        assert f"--- Page {number} ---\n{text}" in content
    assert request.body["response_format"]["json_schema"]["schema"] == SCHEMA

    # Seed 004's extract step.
    assert step.outputs == GOOD
    assert step.handle_outputs == {"output-json-0": {"type": "json", "data": GOOD}}
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    assert step.input_document == document(saved)
    assert set(step.input_document) == {"file_id", "filename", "mime_type"}
    assert step.model == MODEL
    assert step.tokens is not None and step.tokens.total == 100
    assert step.cost is not None and float(step.cost.total) > 0
    assert [attempt.number for attempt in step.attempts] == [1]
    assert (step.step_metadata or {}).get("document") == {"page_count": 3, "truncated": False}
    # The recorded request holds a placeholder; the request as sent is in the trace span.
    assert str(saved.id) in step.inputs["messages"][1]["content"]
    (span,) = step.trace_spans or []
    assert "Total due: 1234.56 EUR" in str(span)


async def test_input_and_a_handle_shaped_document_go_together(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(b"# Invoice INV-9\n\nTotal: 9.99", "invoice.md")
    server.script(Answer(json_content={"invoice_number": "INV-9", "total_amount": 9.99}))
    node = extract(input="The customer says: paid by card")
    out = await bench.run([node], {"doc": handle(saved)})
    assert out.run.status is RunStatus.completed, out.run.error
    content = server.completions[0].body["messages"][1]["content"]
    assert content.startswith("The customer says: paid by card\n\nDocument 'invoice.md'")
    assert "Total: 9.99" in content


async def test_the_text_is_cut_at_max_document_chars_and_the_model_is_told(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(("word " * 500).encode(), "long.txt")
    server.script(Answer(json_content=GOOD))
    out = await bench.run([extract(max_document_chars=50)], {"doc": {"file_id": str(saved.id)}})
    assert out.run.status is RunStatus.completed, out.run.error
    content = server.completions[0].body["messages"][1]["content"]
    assert "cut here" in content and content.count("word") == 10
    assert (out.steps["extract"].step_metadata or {})["document"]["truncated"] is True


async def test_a_file_of_another_organization_is_not_found(
    bench: DocumentBench, store: Store, server: StandIn
) -> None:
    other = await store.organizations.ensure("someone-else")
    theirs = await bench.library.save(other, build_pdf(INVOICE_PAGES), "theirs.pdf")
    # A bare id, as an earlier step could hand it on: starting the run cannot see it as a
    # file reference (a `{"file_id"}` input of another organization is refused there), so
    # the kind itself must refuse it.
    out = await bench.run([extract()], {"doc": str(theirs.id)})
    step = out.steps["extract"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.document_fetch
    assert f"file {theirs.id} not found" in (step.error or "")
    assert server.completions == []  # nothing was asked of the model


async def test_a_corrupt_pdf_fails_the_step_naming_the_file(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(build_pdf(INVOICE_PAGES)[:200], "broken.pdf")
    out = await bench.run([extract()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["extract"]
    assert step.status is StepStatus.error
    assert "'broken.pdf'" in (step.error or "") and str(saved.id) in (step.error or "")
    assert step.error_details is not None and step.error_details.type == "UnusableDocument"
    assert server.completions == []
    # The file was found: the record says which one the step could not read.
    assert step.input_document == document(saved)
    assert step.handle_inputs == {"input-file-0": handle(saved)}


async def test_a_failed_model_call_still_records_the_document_it_was_asked_about(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(build_pdf(INVOICE_PAGES), "invoice.pdf")
    server.script(Answer(status=400, error={"message": "context length exceeded"}))
    out = await bench.run([extract()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["extract"]
    assert step.status is StepStatus.error
    assert "context length exceeded" in (step.error or "")
    assert step.input_document == document(saved)
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    assert step.handle_outputs is None and step.output_document is None


async def test_neither_input_nor_document_is_refused(bench: DocumentBench) -> None:
    from stepline.spec.validate import WorkflowInvalid

    node = extract()
    del node["config"]["document"]
    with pytest.raises(WorkflowInvalid, match="give `input`, `document`"):
        await bench.run([node], {})
