"""What a file is, from its bytes: the MIME type stepline records for it.

The content decides, not the name a client gave: `invoice.pdf` holding HTML is HTML. A
name only tells Markdown (and CSV) apart from other text, and only when the content is
text. Recognized: PDF, PNG, JPEG, JSON, CSV, HTML, Markdown, plain text; anything else
is `application/octet-stream`.
"""

from __future__ import annotations

import codecs
import json
import re

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


def sniff_mime_type(data: bytes, filename: str | None = None) -> str:
    """The MIME type of `data` (the whole content); `filename` only refines text."""
    head = data[:_HEAD]
    # PDF readers accept the header anywhere in the first 1024 bytes.
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    text = _as_text(data)
    if text is None:
        return BINARY
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and _is_json(text):
        return JSON
    if _HTML_START.match(stripped[:_HEAD].encode()):
        return HTML
    name = (filename or "").lower()
    if name.endswith((".md", ".markdown")):
        return MARKDOWN
    if name.endswith(".csv") or _looks_like_csv(text):
        return CSV
    return TEXT


def is_text(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type == JSON


def decode_text(data: bytes) -> str:
    """The text of a content sniffed as text (UTF-8, with or without a BOM)."""
    return data.decode("utf-8-sig")


def _as_text(data: bytes) -> str | None:
    """`data` as text if it is UTF-8 without NULs or other control bytes, else None."""
    try:
        text = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text[:_HEAD]):
        return None
    return text


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _looks_like_csv(text: str) -> bool:
    """At least two lines, each with the same number (one or more) of commas."""
    lines = text[:_HEAD].splitlines()
    if len(text) > _HEAD:
        lines = lines[:-1]  # cut off mid-line
    lines = [line for line in lines[:_CSV_LINES] if line.strip()]
    if len(lines) < 2:
        return False
    counts = {line.count(",") for line in lines}
    return len(counts) == 1 and counts.pop() > 0
