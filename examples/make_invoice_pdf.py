"""Writes examples/invoice.pdf: a small, real, three-page invoice for seed 004's example
(examples/invoice-documents.yaml). Run once; the PDF it made is committed beside it.

    python examples/make_invoice_pdf.py [OUT]

Page 1 is the invoice, page 2 its line items, page 3 the terms and conditions; every
line is real text (Helvetica), so `parse`, `extract` and `split` read it as they would a
PDF from an accounting system. Only pypdf (a dependency of stepline) is needed.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, StreamObject

PAGES = [
    [
        "ACME Corporation - INVOICE",
        "Invoice number: INV-2024-001",
        "Invoice date: 2024-03-01    Due date: 2024-03-31",
        "Bill to: Globex Ltd, 12 Harbour Road, Springfield",
        "Subtotal: 1029.00 EUR",
        "VAT (20%): 205.56 EUR",
        "Total amount due: 1234.56 EUR",
    ],
    [
        "INVOICE INV-2024-001 - LINE ITEMS",
        "1. Widget, standard      10 x 75.00   =  750.00 EUR",
        "2. Widget, deluxe         2 x 99.50   =  199.00 EUR",
        "3. Shipping and handling  1 x 80.00   =   80.00 EUR",
        "Subtotal: 1029.00 EUR",
    ],
    [
        "TERMS AND CONDITIONS",
        "Payment is due within 30 days of the invoice date.",
        "Late payments bear interest at 1% per month.",
        "Goods remain the property of ACME Corporation until paid in full.",
    ],
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build() -> bytes:
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for lines in PAGES:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = " ".join(f"({_escape(line)}) Tj T*" for line in lines)
        stream = StreamObject()
        stream.set_data(f"BT /F1 12 Tf 16 TL 72 720 Td {shown} ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    writer.add_metadata({"/Title": "Invoice INV-2024-001", "/Author": "ACME Corporation"})

    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("invoice.pdf")
    data = build()
    target.write_bytes(data)
    sys.stdout.write(f"wrote {target} ({len(data)} bytes, {len(PAGES)} pages)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
