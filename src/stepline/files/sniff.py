"""What a file is, from its bytes: the MIME type stepline records for it.

The content decides, not the name a client gave: `invoice.pdf` holding HTML is HTML. A
name only tells Markdown (and CSV) apart from other text, and only when the content is
text. Recognized: PDF, PNG, JPEG, JSON, CSV, HTML, Markdown, plain text; anything else
is `application/octet-stream`.

Sniffing reads a stream (a staged upload), never the whole content at once: the magic
numbers, HTML and CSV look at the head; "is it UTF-8 text" decodes the stream chunk by
chunk. Only JSON must be read whole to be told apart from text that merely starts with a
brace, and only up to `JSON_SNIFF_MAX_BYTES`: a larger `{...` content is recorded as
text (a run could not take it as JSON anyway, its inputs being bounded far below that).
"""

from __future__ import annotations

import codecs
import io
import json
import re
from typing import BinaryIO

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
JSON = "application/json"
CSV = "text/csv"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
BINARY = "application/octet-stream"

_HEAD = 8192
_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S
)
_CSV_LINES = 10
_CHUNK = 64 * 1024
JSON_SNIFF_MAX_BYTES = 8 * 1024 * 1024
"""The largest content whose JSON validity is checked (read whole, in memory)."""


def sniff_mime_type(data: bytes, filename: str | None = None) -> str:
    """The MIME type of `data` (the whole content); `filename` only refines text."""
    return sniff_stream(io.BytesIO(data), filename)


def sniff_stream(stream: BinaryIO, filename: str | None = None) -> str:
    """The MIME type of the content `stream` reads from its start to its end, read a
    chunk at a time; `filename` only refines text."""
    head = stream.read(_HEAD)
    # PDF readers accept the header anywhere in the first 1024 bytes.
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    text = _text_head(head, stream)
    if text is None:
        return BINARY
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and _is_json(stream):
        return JSON
    if _HTML_START.match(stripped[:_HEAD].encode()):
        return HTML
    name = (filename or "").lower()
    if name.endswith((".md", ".markdown")):
        return MARKDOWN
    if name.endswith(".csv") or _looks_like_csv(text, whole=len(head) < _HEAD):
        return CSV
    return TEXT


def is_text(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type == JSON


def decode_text(data: bytes) -> str:
    """The text of a content sniffed as text (UTF-8, with or without a BOM)."""
    return data.decode("utf-8-sig")


def _text_head(head: bytes, stream: BinaryIO) -> str | None:
    """The head as text if the whole stream is UTF-8 without NULs or other control bytes
    in its head, else None. Decodes the rest chunk by chunk, keeping none of it."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head)
        while chunk := stream.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return text


def _is_json(stream: BinaryIO) -> bool:
    stream.seek(0, io.SEEK_END)
    if stream.tell() > JSON_SNIFF_MAX_BYTES:
        return False
    stream.seek(0)
    try:
        json.loads(stream.read().decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return False
    return True


def _looks_like_csv(text: str, *, whole: bool) -> bool:
    """At least two lines, each with the same number (one or more) of commas."""
    lines = text.splitlines()
    if not whole:
        lines = lines[:-1]  # cut off mid-line
    lines = [line for line in lines[:_CSV_LINES] if line.strip()]
    if len(lines) < 2:
        return False
    counts = {line.count(",") for line in lines}
    return len(counts) == 1 and counts.pop() > 0
