"""split, merge_pdf and edit end to end (engine, worker, real store and file storage),
on real PDFs built in the tests; each new document is a real PDF file of the run's
organization, and the step records it in seed 004's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepline.records import ErrorStage, RunStatus, StepStatus
from stepline.store import Store
from support.documents import DocumentBench, document, handle
from support.pdfs import build_pdf, form_values, page_texts


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


def split(*subdocuments: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": "split",
        "type": "split",
        "config": {
            "document": "{{ inputs.doc }}",
            "subdocuments": [{"name": name, "pages": pages} for name, pages in subdocuments],
        },
    }


async def test_split_makes_one_real_pdf_per_subdocument(bench: DocumentBench) -> None:
    pdf = build_pdf(["Invoice p1", "Invoice p2", "Receipt", "Annex"])
    saved = await bench.upload(pdf, "bundle.pdf")
    out = await bench.run(
        [split(("Invoice", "1-2"), ("Other", "3,4"), ("Reordered", "4, 1"))],
        {"doc": {"file_id": str(saved.id)}},
    )
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["split"]
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    assert step.input_document == document(saved)
    assert set(step.handle_outputs or {}) == {
        "output-file-Invoice",
        "output-file-Other",
        "output-file-Reordered",
    }
    expected = {
        "Invoice": ["Invoice p1", "Invoice p2"],
        "Other": ["Receipt", "Annex"],
        "Reordered": ["Annex", "Invoice p1"],
    }
    assert set(step.split_documents or {}) == set(expected)
    for name, texts in expected.items():
        made = (step.handle_outputs or {})[f"output-file-{name}"]
        assert made["type"] == "file"
        assert made["document"] == (step.split_documents or {})[name]
        assert step.outputs["documents"][name] == made
        record, content = await bench.read(made["document"])
        assert record.filename == f"bundle_{name}.pdf"
        assert record.mime_type == "application/pdf"
        assert page_texts(content) == texts


async def test_a_split_feeds_the_next_node_through_its_output(bench: DocumentBench) -> None:
    saved = await bench.upload(build_pdf(["one", "two"]), "two.pdf")
    parse = {
        "id": "parse",
        "type": "parse",
        "config": {"document": "{{ nodes.split.output.documents.Second }}"},
    }
    out = await bench.run(
        [split(("First", "1"), ("Second", "2")), parse], {"doc": {"file_id": str(saved.id)}}
    )
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["parse"].outputs["text"] == "two"
    split_documents = out.steps["split"].split_documents or {}
    assert out.steps["parse"].input_document == split_documents["Second"]


async def test_a_page_range_past_the_last_page_fails_naming_it(bench: DocumentBench) -> None:
    saved = await bench.upload(build_pdf(["a", "b"]), "short.pdf")
    out = await bench.run(
        [split(("Ok", "1"), ("Late", "2-5"))], {"doc": {"file_id": str(saved.id)}}
    )
    step = out.steps["split"]
    assert step.status is StepStatus.error
    assert step.error == (
        "sub-document 'Late': pages 2-5 go past the last page of 'short.pdf', which has 2 pages"
    )
    assert step.error_details is not None
    assert step.error_details.context == {"subdocument": "Late", "pages": "2-5", "page_count": 2}
    # The record says which file the step could not split.
    assert step.input_document == document(saved)
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    assert step.split_documents is None and step.handle_outputs is None
    assert (await bench.store.files.page(bench.organization_id)).items[0].id == saved.id


async def test_a_malformed_page_range_is_a_validation_error_naming_it(
    bench: DocumentBench,
) -> None:
    from stepline.spec.validate import WorkflowInvalid

    saved = await bench.upload(build_pdf(["a"]), "a.pdf")
    with pytest.raises(WorkflowInvalid, match=r"subdocuments.*(3-1|ends before it starts)"):
        await bench.run([split(("Bad", "3-1"))], {"doc": {"file_id": str(saved.id)}})


async def test_split_of_a_file_that_is_not_a_pdf_fails_naming_it(bench: DocumentBench) -> None:
    saved = await bench.upload(b"I am text, named like a PDF", "fake.pdf")
    out = await bench.run([split(("A", "1"))], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["split"]
    assert step.status is StepStatus.error
    assert step.error is not None and "'fake.pdf'" in step.error and "is not a PDF" in step.error


async def test_a_subdocument_past_the_file_limit_fails_at_output_storage(
    bench: DocumentBench,
) -> None:
    saved = await bench.upload(build_pdf(["a" * 50] * 3), "three.pdf")
    bench.max_file_bytes = len(await bench.storage.read(saved.sha256)) // 2
    out = await bench.run([split(("All", "1-3"))], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["split"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.output_storage
    assert "'three_All.pdf'" in (step.error or "")
    assert f"larger than {bench.max_file_bytes} bytes" in (step.error or "")
    assert "STEPLINE_MAX_FILE_BYTES" in (step.error or "")


async def test_merge_pdf_joins_documents_in_order_into_a_new_file(bench: DocumentBench) -> None:
    first = await bench.upload(build_pdf(["A1", "A2"]), "a.pdf")
    second = await bench.upload(build_pdf(["B1"]), "b.pdf")
    merge = {
        "id": "merge",
        "type": "merge_pdf",
        "config": {
            "documents": ["{{ inputs.second }}", "{{ inputs.first }}"],
            "filename": "both.pdf",
        },
    }
    out = await bench.run([merge], {"first": {"file_id": str(first.id)}, "second": handle(second)})
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["merge"]
    assert step.handle_inputs == {"input-file-0": handle(second), "input-file-1": handle(first)}
    made = (step.handle_outputs or {})["output-file-0"]
    assert step.output_document == made["document"]
    assert step.outputs == {"document": made, "page_count": 3}
    record, content = await bench.read(made["document"])
    assert (record.filename, record.mime_type) == ("both.pdf", "application/pdf")
    assert page_texts(content) == ["B1", "A1", "A2"]


async def test_merge_pdf_with_a_corrupt_input_fails_naming_it(bench: DocumentBench) -> None:
    good = await bench.upload(build_pdf(["fine"]), "good.pdf")
    bad = await bench.upload(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "bad.pdf")
    merge = {
        "id": "merge",
        "type": "merge_pdf",
        "config": {"documents": ["{{ inputs.good }}", "{{ inputs.bad }}"]},
    }
    out = await bench.run(
        [merge], {"good": {"file_id": str(good.id)}, "bad": {"file_id": str(bad.id)}}
    )
    step = out.steps["merge"]
    assert step.status is StepStatus.error
    assert step.error is not None and "'bad.pdf'" in step.error and str(bad.id) in step.error
    assert out.run.status is RunStatus.failed


def edit(fields: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {
        "id": "edit",
        "type": "edit",
        "config": {"document": "{{ inputs.doc }}", "fields": fields, **config},
    }


async def test_edit_fills_a_form_into_a_new_pdf(bench: DocumentBench) -> None:
    form = build_pdf(["Application form", "Terms"], form_fields=["name", "amount"])
    saved = await bench.upload(form, "form.pdf")
    out = await bench.run(
        [edit({"name": "Ada Lovelace", "amount": 1234.5})], {"doc": {"file_id": str(saved.id)}}
    )
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["edit"]
    assert step.handle_inputs == {
        "input-file-0": handle(saved),
        "input-json-0": {"type": "json", "data": {"name": "Ada Lovelace", "amount": 1234.5}},
    }
    made = (step.handle_outputs or {})["output-file-0"]
    assert step.output_document == made["document"]
    assert step.input_document == document(saved)
    assert step.outputs == {"document": made, "filled": ["amount", "name"]}
    record, content = await bench.read(made["document"])
    assert record.filename == "form_filled.pdf" and record.id != saved.id
    assert form_values(content) == {"name": "Ada Lovelace", "amount": "1234.5"}
    # The original is left as it was.
    _, original = await bench.read(document(saved))
    assert form_values(original) == {"name": "", "amount": ""}


async def test_edit_of_an_unknown_field_fails_listing_the_form_fields(
    bench: DocumentBench,
) -> None:
    saved = await bench.upload(build_pdf(["x"], form_fields=["name"]), "form.pdf")
    out = await bench.run([edit({"nmae": "Ada"})], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["edit"]
    assert step.status is StepStatus.error
    assert step.error is not None
    assert "no form field named 'nmae'" in step.error and "its fields: name" in step.error


async def test_edit_of_a_pdf_without_a_form_fails_naming_it(bench: DocumentBench) -> None:
    saved = await bench.upload(build_pdf(["no form here"]), "plain.pdf")
    out = await bench.run([edit({"name": "Ada"})], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["edit"]
    assert step.status is StepStatus.error
    assert "'plain.pdf'" in (step.error or "") and "no form fields" in (step.error or "")
