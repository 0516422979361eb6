"""A document's text, per page where it has pages: PDF, HTML, plain text, Markdown, JSON, CSV.

Pure functions of the bytes (the `parse` kind fetches and records); each returns a
`ParsedDocument`. Extraction is bounded by `max_chars` (the text is cut, and says so), so
that a large document yields a step output within the engine's limits.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from stepline.files import FileInfo
from stepline.files.sniff import CSV, HTML, JSON, MARKDOWN, PDF, TEXT, decode_text
from stepline.nodes.document_files import unusable
from stepline.nodes.pdf import guarded, open_pdf

SUPPORTED = (PDF, HTML, TEXT, MARKDOWN, JSON, CSV)


@dataclass
class ParsedDocument:
    """What `parse` outputs: the text, each page's text, and what the document says of itself."""

    text: str
    pages: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    """JSON: the value; CSV: the rows (lists of strings)."""
    truncated: bool = False


def parse_document(info: FileInfo, data: bytes, max_chars: int) -> ParsedDocument:
    """The document's text; NodeError naming the file if its type is not supported."""
    if info.mime_type == PDF:
        return _pdf(info, data, max_chars)
    if info.mime_type not in SUPPORTED:
        raise unusable(info, "cannot be parsed", expected=", ".join(SUPPORTED))
    text = decode_text(data)
    if info.mime_type == HTML:
        return _bounded(*_html(text), max_chars)
    if info.mime_type == JSON:
        parsed = _bounded(text, {}, max_chars)
        if not parsed.truncated:
            parsed.data = json.loads(text)
        return parsed
    if info.mime_type == CSV:
        parsed = _bounded(text, {}, max_chars)
        if not parsed.truncated:
            parsed.data = list(csv.reader(io.StringIO(text)))
            parsed.metadata["rows"] = len(parsed.data)
        return parsed
    return _bounded(text, {}, max_chars)


def _bounded(text: str, metadata: dict[str, Any], max_chars: int) -> ParsedDocument:
    truncated = len(text) > max_chars
    text = text[:max_chars]
    return ParsedDocument(text=text, pages=[text], metadata=metadata, truncated=truncated)


def _pdf(info: FileInfo, data: bytes, max_chars: int) -> ParsedDocument:
    reader = open_pdf(info, data)
    pages: list[str] = []
    left = max_chars
    truncated = False
    for number, page in enumerate(reader.pages, start=1):
        if left <= 0:
            truncated = True
            pages.append("")
            continue
        text = guarded(info, f"read (page {number})", page.extract_text) or ""
        if len(text) > left:
            text, truncated = text[:left], True
        left -= len(text)
        pages.append(text)
    metadata: dict[str, Any] = {"page_count": len(reader.pages)}
    described = guarded(info, "read (its metadata)", lambda: reader.metadata)
    for key, value in (described or {}).items():
        name = str(key).lstrip("/").lower()
        if name in ("title", "author", "subject", "creator", "producer", "keywords"):
            metadata[name] = str(value)
    metadata["has_form"] = bool(guarded(info, "read (its form)", reader.get_fields))
    return ParsedDocument(
        text="\n\n".join(pages), pages=pages, metadata=metadata, truncated=truncated
    )


_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article"}
    | {"header", "footer", "table", "ul", "ol", "pre", "blockquote", "hr", "title"}
)
_HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HIDDEN:
            self._hidden += 1
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _html(source: str) -> tuple[str, dict[str, Any]]:
    parser = _HTMLText()
    parser.feed(source)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    title = " ".join("".join(parser.title).split())
    return text, ({"title": title} if title else {})
