"""The `split` node kind: a PDF into named sub-documents by page ranges.

Each sub-document is a new PDF stored as a file of the run's organization, named
`<document>_<Name>.pdf`, and given on its own output handle, `output-file-<Name>`. The
step records `input_document` (the PDF split) and `split_documents` (each name -> its
document), as Retab's steps show them. A range past the document's last page fails the
step, naming the sub-document, the range and the page count.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pypdf import PdfReader, PdfWriter

from stepline.files import FileInfo
from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.nodes.document_files import FileReference, fetch, save, stem
from stepline.nodes.pdf import guarded, open_pdf, page_indexes, parse_pages, to_bytes
from stepline.records import ErrorDetails, ErrorStage


class SubDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Names the sub-document and its handle (`output-file-<name>`).",
    )
    pages: str = Field(description="1-based pages and ranges, e.g. `1-2,4`.")

    @field_validator("pages")
    @classmethod
    def _ranges(cls, pages: str) -> str:
        parse_pages(pages)
        return pages


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: FileReference = Field(description="The PDF to split (a file reference).")
    subdocuments: list[SubDocument] = Field(min_length=1, max_length=256)

    @field_validator("subdocuments")
    @classmethod
    def _unique(cls, subdocuments: list[SubDocument]) -> list[SubDocument]:
        names = [sub.name for sub in subdocuments]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"sub-document names must differ: {', '.join(twice)} repeated")
        return subdocuments


def handle_of(name: str) -> str:
    return f"output-file-{name}"


class SplitNode(NodeKind):
    """Splits a PDF into named sub-documents, each a new file."""

    type = "split"
    config_model = SplitConfig
    description = "Splits a PDF into named sub-documents by page ranges, each stored as a new file."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(SplitConfig, ctx.config)
        info, data = await fetch(ctx, config.document, "document")
        parts = await asyncio.to_thread(_split, info, data, config.subdocuments)
        documents: dict[str, Any] = {}
        handles: dict[str, Any] = {}
        for sub, content in zip(config.subdocuments, parts, strict=True):
            made = await save(ctx, content, f"{stem(info.filename)}_{sub.name}.pdf")
            documents[sub.name] = made.document()
            handles[handle_of(sub.name)] = made.handle()
        return NodeResult(
            output={"documents": {name: handles[handle_of(name)] for name in documents}},
            handle_inputs={"input-file-0": info.handle()},
            handle_outputs=handles,
            input_document=info.document(),
            split_documents=documents,
        )


def _split(info: FileInfo, data: bytes, subdocuments: list[SubDocument]) -> list[bytes]:
    reader = open_pdf(info, data)
    count = len(reader.pages)
    for sub in subdocuments:
        if max(last for _, last in parse_pages(sub.pages)) > count:
            message = (
                f"sub-document '{sub.name}': pages {sub.pages} go past the last page of "
                f"'{info.filename}', which has {count} page{'s' if count != 1 else ''}"
            )
            raise NodeError(
                message,
                stage=ErrorStage.execution,
                details=ErrorDetails(
                    type="PageOutOfRange",
                    message=message,
                    context={"subdocument": sub.name, "pages": sub.pages, "page_count": count},
                ),
            )
    return [guarded(info, "split", _extract, reader, sub.pages) for sub in subdocuments]


def _extract(reader: PdfReader, pages: str) -> bytes:
    writer = PdfWriter()
    for index in page_indexes(parse_pages(pages)):
        writer.add_page(reader.pages[index])
    return to_bytes(writer)
