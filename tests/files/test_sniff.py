"""A file's type comes from its bytes; a name only refines text."""

from __future__ import annotations

import io

import pytest

from stepline.files.sniff import (
    BINARY,
    JSON,
    JSON_SNIFF_MAX_BYTES,
    TEXT,
    sniff_mime_type,
    sniff_stream,
)


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "scan", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.bin", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None, "image/jpeg"),
        (b'{"a": [1, 2]}', "data.txt", "application/json"),
        (b"[1, 2, 3]\n", None, "application/json"),
        (b"name,amount\nacme,12\nglobex,7\n", None, "text/csv"),
        (b"just one line, with a comma", "table.csv", "text/csv"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "page.txt", "text/html"),
        (b"  <html lang='en'><p>x</p></html>", None, "text/html"),
        (b"# Title\n\nSome *text*.", "notes.md", "text/markdown"),
        (b"# Title\n\nSome *text*.", "notes.txt", "text/plain"),
        (b"\xef\xbb\xbfplain text with a BOM", None, "text/plain"),
        (b"\x00\x01\x02binary", "notes.md", "application/octet-stream"),
        (b"\xff\xfe\xfdnot utf-8", None, "application/octet-stream"),
        (b"{not json", None, "text/plain"),
    ],
)
def test_the_content_decides_the_type(data: bytes, filename: str | None, expected: str) -> None:
    assert sniff_mime_type(data, filename) == expected


def test_a_pdf_name_on_bytes_that_are_not_a_pdf_is_not_a_pdf() -> None:
    assert sniff_mime_type(b"hello, I am text", "invoice.pdf") == "text/plain"
    assert sniff_mime_type(b"<html><body>x</body></html>", "invoice.pdf") == "text/html"
    assert sniff_mime_type(b"\x00garbage", "invoice.pdf") == "application/octet-stream"


def test_markdown_by_name_only_when_the_content_is_text() -> None:
    assert sniff_mime_type(b"%PDF-1.4 ...", "readme.md") == "application/pdf"
    assert sniff_mime_type(b"hello", "README.MD") == "text/markdown"


def test_sniffing_a_stream_reads_text_chunk_by_chunk() -> None:
    # Valid UTF-8 in the head, a broken byte far past it: not text.
    assert sniff_stream(io.BytesIO(b"a" * 100_000 + b"\xff"), "x.txt") == BINARY
    # JSON past the size checked whole is recorded as text.
    large = b"[" + b"1," * (JSON_SNIFF_MAX_BYTES // 2) + b"1]"
    assert sniff_stream(io.BytesIO(large)) == TEXT
    assert sniff_stream(io.BytesIO(b"[" + b"1," * 1000 + b"1]")) == JSON
