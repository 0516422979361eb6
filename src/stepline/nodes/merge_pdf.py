"""The `merge_pdf` node kind: several PDFs, in order, as one new PDF file.

Records each PDF read as `input-file-<i>`, the new one as `output-file-0` and
`output_document`.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.files import FileInfo
from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_files import FileReference, fetch, save
from stepline.nodes.pdf import guarded, open_pdf, to_bytes

MAX_DOCUMENTS = 256


class MergePdfConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[FileReference] = Field(
        min_length=1, max_length=MAX_DOCUMENTS, description="The PDFs to merge, in order."
    )
    filename: str = Field(default="merged.pdf", min_length=1, max_length=255)


class MergePdfNode(NodeKind):
    """Merges PDFs into one new file."""

    type = "merge_pdf"
    config_model = MergePdfConfig
    description = "Merges several PDFs, in order, into one new PDF file."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(MergePdfConfig, ctx.config)
        inputs = [
            await fetch(ctx, reference, f"documents[{index}]")
            for index, reference in enumerate(config.documents)
        ]
        merged, page_count = await run_in_child(_merge, inputs)
        made = await save(ctx, merged, config.filename)
        return NodeResult(
            output={"document": made.handle(), "page_count": page_count},
            handle_inputs={f"input-file-{i}": info.handle() for i, (info, _) in enumerate(inputs)},
            handle_outputs={"output-file-0": made.handle()},
            output_document=made.document(),
        )


def _merge(inputs: list[tuple[FileInfo, bytes]]) -> tuple[bytes, int]:
    """The merged PDF and its page count."""
    from pypdf import PdfWriter  # imported by the child process that runs this

    writer = PdfWriter()
    for info, data in inputs:
        reader = open_pdf(info, data)
        guarded(info, "merged", writer.append, reader)
    return to_bytes(writer), len(writer.pages)
