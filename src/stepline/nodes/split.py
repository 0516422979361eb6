"""The `split` node kind: a PDF into named sub-documents, by page ranges or by a model.

With `subdocuments`, each names its pages (`1-2,4`). With `classify`, a language model
assigns each page to one of named categories (`split_pages`), and each category's pages
make its sub-document (a category given no page makes none).

Each sub-document is a new PDF stored as a file of the run's organization, named
`<document>_<Name>.pdf`, and given on its own output handle, `output-file-<Name>`. The
step records `input_document` (the PDF split) and `split_documents` (each name -> its
document), as Retab's steps show them. A range past the document's last page fails the
step, naming the sub-document, the range and the page count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepline.files import FileInfo
from stepline.nodes.base import NodeContext, NodeError, NodeResult
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_files import FileReference, fetch, reading, save, stem
from stepline.nodes.language_model import LanguageModelKind
from stepline.nodes.pdf import guarded, open_pdf, page_indexes, parse_pages, to_bytes
from stepline.nodes.split_pages import PageClassification, assign_pages
from stepline.records import ErrorDetails, ErrorStage

if TYPE_CHECKING:
    from pypdf import PdfReader


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
    subdocuments: list[SubDocument] | None = Field(
        default=None, min_length=1, max_length=256, description="Each sub-document's pages."
    )
    classify: PageClassification | None = Field(
        default=None, description="Or: a model assigns each page to one of these categories."
    )

    @field_validator("subdocuments")
    @classmethod
    def _unique(cls, subdocuments: list[SubDocument] | None) -> list[SubDocument] | None:
        names = [sub.name for sub in subdocuments or []]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"sub-document names must differ: {', '.join(twice)} repeated")
        return subdocuments

    @model_validator(mode="before")
    @classmethod
    def _one_way(cls, value: Any) -> Any:
        # Before the fields: said even where a template stands for the document.
        if isinstance(value, Mapping):
            ways = [value.get(name) is not None for name in ("subdocuments", "classify")]
            if ways.count(True) != 1:
                raise ValueError("give either `subdocuments` (page ranges) or `classify` (a model)")
        return value


def handle_of(name: str) -> str:
    return f"output-file-{name}"


class SplitNode(LanguageModelKind):
    """Splits a PDF into named sub-documents, each a new file."""

    type = "split"
    config_model = SplitConfig
    description = (
        "Splits a PDF into named sub-documents, by page ranges or by a model assigning each "
        "page a category; each sub-document is stored as a new file."
    )
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    records_run_context: ClassVar[bool] = False

    def config_problems(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        classify = config.get("classify")
        if not isinstance(classify, Mapping):
            return []
        return [
            (f"classify.{path}", message) for path, message in super().config_problems(classify)
        ]

    def configured_secrets(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        classify = config.get("classify")
        if not isinstance(classify, Mapping):
            return []
        found = super().configured_secrets(classify)
        return [(f"classify.{path}", name) for path, name in found]

    def first_request(self, config: Any) -> dict[str, Any]:
        return {}  # the request needs the pages' text: it is in the step's trace spans

    def recorded_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return inputs

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(SplitConfig, ctx.config)
        info, data = await fetch(ctx, config.document, "document")
        with reading(info):
            return await self._split(ctx, config, info, data)

    async def _split(
        self, ctx: NodeContext, config: SplitConfig, info: FileInfo, data: bytes
    ) -> NodeResult:
        subdocuments = config.subdocuments or []
        result = NodeResult()
        if config.classify is not None:
            texts = await run_in_child(_page_texts, info, data)
            pages, calls = await assign_pages(self, ctx, config.classify, texts)
            subdocuments = [
                SubDocument(name=name, pages=",".join(map(str, numbers)))
                for name, numbers in pages.items()
            ]
            result = NodeResult(
                model=calls.model,
                tokens=calls.tokens,
                cost=calls.cost,
                trace_spans=calls.spans,
                metadata=calls.metadata(),
            )
        parts = await run_in_child(_split, info, data, subdocuments)
        documents: dict[str, Any] = {}
        handles: dict[str, Any] = {}
        for sub, content in zip(subdocuments, parts, strict=True):
            made = await save(ctx, content, f"{stem(info.filename)}_{sub.name}.pdf")
            documents[sub.name] = made.document()
            handles[handle_of(sub.name)] = made.handle()
        result.output = {
            "documents": {name: handles[handle_of(name)] for name in documents},
            "pages": {sub.name: sub.pages for sub in subdocuments},
        }
        result.handle_inputs = {"input-file-0": info.handle()}
        result.handle_outputs = handles
        result.input_document = info.document()
        result.split_documents = documents
        return result


def _page_texts(info: FileInfo, data: bytes) -> list[str]:
    reader = open_pdf(info, data)
    return [
        guarded(info, f"read (page {number})", page.extract_text) or ""
        for number, page in enumerate(reader.pages, start=1)
    ]


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
    from pypdf import PdfWriter  # imported by the child process that runs this

    writer = PdfWriter()
    for index in page_indexes(parse_pages(pages)):
        writer.add_page(reader.pages[index])
    return to_bytes(writer)
