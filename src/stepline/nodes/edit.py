"""The `edit` node kind: a PDF's form (AcroForm) filled in from JSON, as a new PDF file.

`fields` maps each form field's name to its value (text, or a checkbox's state such as
`/Yes`); a name the form does not have fails the step, listing the names it has. The
filled form is a new file; the original is left as it was.

Records `input-file-0` (the form), `input-json-0` (the values), `output-file-0` and
`output_document` (the filled PDF), and `input_document`.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from stepline.files import FileInfo
from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_files import FileReference, fetch, json_handle, save, stem, unusable
from stepline.nodes.pdf import guarded, open_pdf, to_bytes
from stepline.records import INPUT_JSON_HANDLE

MAX_FIELDS = 10_000


class EditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: FileReference = Field(description="The PDF form to fill (a file reference).")
    fields: dict[str, str | int | float | bool] = Field(
        max_length=MAX_FIELDS, description="Each form field's name and its value."
    )
    filename: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The new file's name (default: <document>_filled.pdf).",
    )


class EditNode(NodeKind):
    """Fills a PDF form's fields, producing a new PDF."""

    type = "edit"
    config_model = EditConfig
    description = "Fills a PDF form's fields (AcroForm) from JSON, producing a new PDF file."

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(EditConfig, ctx.config)
        info, data = await fetch(ctx, config.document, "document")
        values = {name: _text(value) for name, value in config.fields.items()}
        filled = await run_in_child(_fill, info, data, values)
        made = await save(ctx, filled, config.filename or f"{stem(info.filename)}_filled.pdf")
        return NodeResult(
            output={"document": made.handle(), "filled": sorted(values)},
            handle_inputs={
                "input-file-0": info.handle(),
                INPUT_JSON_HANDLE: json_handle(config.fields),
            },
            handle_outputs={"output-file-0": made.handle()},
            input_document=info.document(),
            output_document=made.document(),
        )


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "/Yes" if value else "/Off"
    return str(value)


def _fill(info: FileInfo, data: bytes, values: dict[str, str]) -> bytes:
    reader = open_pdf(info, data)
    fields: dict[str, Any] = guarded(info, "read (its form)", reader.get_fields) or {}
    if not fields:
        raise unusable(info, "has no form fields to fill")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise unusable(
            info,
            f"has no form field named {', '.join(map(repr, unknown))}; "
            f"its fields: {', '.join(sorted(fields))}",
        )
    from pypdf import PdfWriter  # imported by the child process that runs this

    writer = PdfWriter(clone_from=reader)
    for page in writer.pages:
        if "/Annots" not in page:
            continue  # no widget to fill on this page
        guarded(info, "filled", writer.update_page_form_field_values, page, values, 0, False)
    return to_bytes(writer)
