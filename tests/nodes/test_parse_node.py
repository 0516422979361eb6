"""The `parse` kind end to end (engine, worker, real store and file storage): text per
page from real PDFs, HTML, text, Markdown, JSON and CSV, recorded in Retab's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepline.documents import DocumentLimits
from stepline.records import ErrorStage, RunStatus, StepStatus
from stepline.store import Store
from support.documents import DocumentBench, document, handle
from support.pdfs import build_pdf


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


def parse(**config: object) -> dict[str, object]:
    return {"id": "parse", "type": "parse", "config": {"document": "{{ inputs.doc }}", **config}}


async def test_a_pdf_parses_to_text_per_page_with_its_record(bench: DocumentBench) -> None:
    pdf = build_pdf(["Invoice INV-1", None, "Total 1234.56"], title="An invoice")
    saved = await bench.upload(pdf, "invoice.pdf")
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["parse"]
    output = step.outputs
    assert output["text"] == "Invoice INV-1\n\n\n\nTotal 1234.56"
    assert output["pages"] == [
        {"page": 1, "text": "Invoice INV-1"},
        {"page": 2, "text": ""},  # a page without text, as a scan's
        {"page": 3, "text": "Total 1234.56"},
    ]
    assert output["page_count"] == 3
    assert output["metadata"]["title"] == "An invoice"
    assert output["metadata"]["has_form"] is False
    assert output["truncated"] is False
    # Seed 004's shapes.
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    assert step.handle_outputs == {"output-json-0": {"type": "json", "data": output}}
    assert step.input_document == document(saved)
    assert saved.mime_type == "application/pdf"


async def test_a_handle_shaped_reference_is_taken_too(bench: DocumentBench) -> None:
    saved = await bench.upload(build_pdf(["Only page"]), "one.pdf")
    out = await bench.run([parse()], {"doc": handle(saved)})
    assert out.steps["parse"].outputs["text"] == "Only page"


@pytest.mark.parametrize(
    ("content", "name", "text", "extra"),
    [
        (
            b"<html><head><title>Hi</title><style>p{}</style></head>"
            b"<body><h1>Title</h1><p>One &amp; two</p><script>x()</script></body></html>",
            "page.html",
            "Title\nOne & two",
            {"metadata": {"title": "Hi"}},
        ),
        (b"# Notes\n\n- a\n- b\n", "notes.md", "# Notes\n\n- a\n- b\n", {}),
        (b"plain words", "words.txt", "plain words", {}),
        (b'{"total": 12.5}', "data.json", '{"total": 12.5}', {"data": {"total": 12.5}}),
        (
            b"name,amount\nacme,12\n",
            "t.csv",
            "name,amount\nacme,12\n",
            {"data": [["name", "amount"], ["acme", "12"]]},
        ),
    ],
)
async def test_text_documents_parse_to_their_text(
    bench: DocumentBench, content: bytes, name: str, text: str, extra: dict[str, object]
) -> None:
    saved = await bench.upload(content, name)
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    output = out.steps["parse"].outputs
    assert output["text"] == text
    for key, value in extra.items():
        if key == "metadata":
            assert output["metadata"].items() >= value.items()  # type: ignore[attr-defined]
        else:
            assert output[key] == value


async def test_the_text_is_cut_at_max_chars_and_says_so(bench: DocumentBench) -> None:
    saved = await bench.upload(build_pdf(["abcdefghij", "klmnopqrst"]), "long.pdf")
    out = await bench.run([parse(max_chars=15)], {"doc": {"file_id": str(saved.id)}})
    output = out.steps["parse"].outputs
    assert output["truncated"] is True
    assert [p["text"] for p in output["pages"]] == ["abcdefghij", "klmno"]


async def test_an_output_past_the_engine_limit_fails_the_step_not_the_worker(
    bench: DocumentBench,
) -> None:
    bench.limits = DocumentLimits(max_output_bytes=2000)
    saved = await bench.upload(("x" * 5000).encode(), "big.txt")
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.output_storage
    assert "STEPLINE_MAX_OUTPUT_BYTES" in (step.error or "")
    assert out.run.status is RunStatus.failed


async def test_a_corrupt_pdf_fails_the_step_naming_the_file(bench: DocumentBench) -> None:
    broken = build_pdf(["fine"])[:200]  # cut short: a header, then nothing readable
    saved = await bench.upload(broken, "broken.pdf")
    assert saved.mime_type == "application/pdf"
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    assert out.run.status is RunStatus.failed
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert "'broken.pdf'" in (step.error or "") and str(saved.id) in (step.error or "")
    assert "cannot be read as a PDF" in (step.error or "")
    assert step.error_details is not None and step.error_details.type == "UnusableDocument"
    assert step.input_document == document(saved)
    assert step.handle_inputs == {"input-file-0": handle(saved)}


async def test_a_file_of_another_organization_is_not_found(
    bench: DocumentBench, store: Store
) -> None:
    other = await store.organizations.ensure("someone-else")
    theirs = await bench.library.save(other, build_pdf(["theirs"]), "theirs.pdf")
    # A bare id, as an earlier step could hand it on: starting the run cannot see it as a
    # file reference (a `{"file_id"}` input of another organization is refused there), so
    # the kind itself must refuse it.
    out = await bench.run([parse()], {"doc": str(theirs.id)})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.document_fetch
    assert f"file {theirs.id} not found" in (step.error or "")


async def test_a_binary_file_cannot_be_parsed_and_the_error_says_which(
    bench: DocumentBench,
) -> None:
    saved = await bench.upload(b"\x89PNG\r\n\x1a\n\x00\x00", "logo.png")
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert "'logo.png'" in (step.error or "") and "image/png" in (step.error or "")


async def test_a_reference_that_is_not_one_fails_at_input_collection(
    bench: DocumentBench,
) -> None:
    out = await bench.run([parse()], {"doc": {"name": "no id"}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.input_collection
    assert "$.config.document" in (step.error or "")
    json.dumps(step.model_dump(mode="json"))


async def test_a_pdf_locked_with_a_password_fails_naming_the_file(bench: DocumentBench) -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(build_pdf(["secret page"]))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="AES-128")
    locked = io.BytesIO()
    writer.write(locked)
    saved = await bench.upload(locked.getvalue(), "locked.pdf")
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error is not None
    assert "'locked.pdf'" in step.error and "encrypted with a password" in step.error
