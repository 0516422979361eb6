"""split with `classify`: a model (an OpenAI-compatible server on 127.0.0.1) assigns each
page a category; each category's pages become a real PDF file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepline.records import RunStatus, StepStatus
from stepline.store import Store
from support.documents import DocumentBench, handle
from support.openai_server import Answer, StandIn, openai_stand_in
from support.pdfs import build_pdf, page_texts


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in() as running:
        yield running


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


def split_by_model(server: StandIn) -> dict[str, Any]:
    return {
        "id": "split",
        "type": "split",
        "config": {
            "document": "{{ inputs.doc }}",
            "classify": {
                "base_url": server.base_url,
                "model": "pager-1",
                "categories": [
                    {"name": "Invoice", "description": "an invoice"},
                    {"name": "Receipt", "description": "a receipt"},
                    {"name": "Contract", "description": "a contract"},
                ],
            },
        },
    }


def assignment(*categories: str) -> Answer:
    pages = [{"page": n, "category": c} for n, c in enumerate(categories, start=1)]
    return Answer(
        json_content={"pages": pages}, usage={"prompt_tokens": 40, "completion_tokens": 9}
    )


async def test_the_model_assigns_pages_and_each_category_becomes_a_pdf(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(build_pdf(["Invoice A", "Receipt B", "Invoice C"]), "mixed.pdf")
    server.script(assignment("Invoice", "Receipt", "Invoice"))
    out = await bench.run([split_by_model(server)], {"doc": {"file_id": str(saved.id)}})
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["split"]
    # The model saw every page's text, numbered.
    (request,) = server.completions
    assert "Page 1:\nInvoice A" in request.body["messages"][1]["content"]
    assert "Page 3:\nInvoice C" in request.body["messages"][1]["content"]
    assert step.outputs["pages"] == {"Invoice": "1,3", "Receipt": "2"}
    assert set(step.handle_outputs or {}) == {"output-file-Invoice", "output-file-Receipt"}
    assert set(step.split_documents or {}) == {"Invoice", "Receipt"}  # no page: no Contract
    assert step.handle_inputs == {"input-file-0": handle(saved)}
    _, invoice = await bench.read((step.split_documents or {})["Invoice"])
    _, receipt = await bench.read((step.split_documents or {})["Receipt"])
    assert page_texts(invoice) == ["Invoice A", "Invoice C"]
    assert page_texts(receipt) == ["Receipt B"]
    assert step.model == "pager-1"
    assert step.tokens is not None and step.tokens.total == 49
    assert [span["name"] for span in step.trace_spans or []] == ["assign_pages"]


async def test_an_answer_that_leaves_a_page_out_fails_the_step_saying_which(
    bench: DocumentBench, server: StandIn
) -> None:
    saved = await bench.upload(build_pdf(["a", "b", "c"]), "three.pdf")
    server.script(assignment("Invoice", "Receipt"))
    out = await bench.run([split_by_model(server)], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["split"]
    assert step.status is StepStatus.error
    assert step.error is not None and "no category for page 3" in step.error
    assert step.tokens is not None and step.tokens.total == 49  # what it spent is on record
    assert step.error_details is not None and step.error_details.context is not None
    assert json.loads(step.error_details.context["answer"])["pages"][1]["page"] == 2


async def test_classify_and_subdocuments_together_are_refused(
    bench: DocumentBench, server: StandIn
) -> None:
    from stepline.spec.validate import WorkflowInvalid

    node = split_by_model(server)
    node["config"]["subdocuments"] = [{"name": "A", "pages": "1"}]
    with pytest.raises(WorkflowInvalid, match="either `subdocuments`"):
        await bench.run([node], {"doc": {"file_id": "x"}})
    del node["config"]["subdocuments"], node["config"]["classify"]
    with pytest.raises(WorkflowInvalid, match="either `subdocuments`"):
        await bench.run([node], {"doc": {"file_id": "x"}})
