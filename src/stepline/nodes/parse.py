"""The `parse` node kind: a document's text, per page, and its metadata.

Reads PDF (pypdf's text extraction; a page without text, such as a scan, gives ""), HTML
(the visible text), plain text, Markdown, JSON (also its value, as `data`) and CSV (also
its rows). The text is cut at `max_chars` (`truncated` says so), which keeps the output
within the engine's document limits.

Records `input-file-0` and `input_document` (the file read) and `output-json-0` (the
output), as Retab's steps show them.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_files import FileReference, fetch, json_handle, reading
from stepline.nodes.document_text import parse_document
from stepline.records import OUTPUT_JSON_HANDLE

DEFAULT_MAX_CHARS = 1_000_000


class ParseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: FileReference = Field(description="The file to parse (a file reference).")
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS,
        gt=0,
        description="The most characters of text kept (the rest is cut; `truncated` says so).",
    )
    pages: bool = Field(default=True, description="Also output each page's text.")


class ParseNode(NodeKind):
    """A document's text, per page, and metadata."""

    type = "parse"
    config_model = ParseConfig
    description = (
        "A document's text, per page, and its metadata: PDF, HTML, plain text, Markdown, JSON, CSV."
    )

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ParseConfig, ctx.config)
        info, data = await fetch(ctx, config.document, "document")
        with reading(info):
            parsed = await run_in_child(parse_document, info, data, config.max_chars)
        output: dict[str, Any] = {
            "document": info.document(),
            "text": parsed.text,
            "page_count": len(parsed.pages),
            "metadata": parsed.metadata,
            "truncated": parsed.truncated,
        }
        if config.pages:
            output["pages"] = [
                {"page": number, "text": text} for number, text in enumerate(parsed.pages, start=1)
            ]
        if parsed.data is not None:
            output["data"] = parsed.data
        return NodeResult(
            output=output,
            handle_inputs={"input-file-0": info.handle()},
            handle_outputs={OUTPUT_JSON_HANDLE: json_handle(output)},
            input_document=info.document(),
        )
