"""Real PDFs built in the tests with pypdf: pages with text (Helvetica, one line each),
pages without text (as a scan would be), and AcroForm text fields."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _font(writer: PdfWriter) -> IndirectObject:
    return writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )


def build_pdf(
    pages: Sequence[str | None],
    *,
    title: str | None = None,
    form_fields: Sequence[str] = (),
) -> bytes:
    """A PDF with one page per item: its text (one line), or no text at all for None.

    `form_fields`: text fields of an AcroForm on the first page, one per name.
    """
    writer = PdfWriter()
    font = _font(writer)
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        if text is not None:
            stream = StreamObject()
            stream.set_data(f"BT /F1 12 Tf 72 720 Td ({_escape(text)}) Tj ET".encode("latin-1"))
            page[NameObject("/Contents")] = writer._add_object(stream)
    if form_fields:
        _add_form(writer, font, form_fields)
    if title is not None:
        writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _add_form(writer: PdfWriter, font: IndirectObject, names: Sequence[str]) -> None:
    page = writer.pages[0]
    refs = ArrayObject()
    for index, name in enumerate(names):
        top = 700 - 40 * index
        widget = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/T"): TextStringObject(name),
                NameObject("/V"): TextStringObject(""),
                NameObject("/F"): NumberObject(4),
                NameObject("/DA"): TextStringObject("/Helv 12 Tf 0 g"),
                NameObject("/Rect"): ArrayObject(
                    [FloatObject(72), FloatObject(top), FloatObject(372), FloatObject(top + 24)]
                ),
                NameObject("/P"): page.indirect_reference,
            }
        )
        refs.append(writer._add_object(widget))
    page[NameObject("/Annots")] = refs
    writer._root_object[NameObject("/AcroForm")] = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Fields"): refs,
                NameObject("/DA"): TextStringObject("/Helv 12 Tf 0 g"),
                NameObject("/DR"): DictionaryObject(
                    {NameObject("/Font"): DictionaryObject({NameObject("/Helv"): font})}
                ),
                NameObject("/NeedAppearances"): BooleanObject(True),
            }
        )
    )


def page_texts(data: bytes) -> list[str]:
    """Each page's extracted text."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def form_values(data: bytes) -> dict[str, object]:
    fields = PdfReader(io.BytesIO(data)).get_fields() or {}
    return {name: field.get("/V") for name, field in fields.items()}


def slow_pdf(pages: int = 4, operators: int = 80_000) -> bytes:
    """A small (compressed) PDF whose text takes pypdf seconds to extract: each page shows
    one word `operators` times, each in its own text object."""
    writer = PdfWriter()
    font = _font(writer)
    body = " ".join("BT /F1 12 Tf 72 720 Td (word) Tj ET" for _ in range(operators)).encode()
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        stream = StreamObject()
        stream.set_data(body)
        page[NameObject("/Contents")] = writer._add_object(stream.flate_encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
