"""PDF reading and writing for the document kinds (pypdf), with errors that name the file.

pypdf is pure Python: every call here is CPU-bound and is run by the kinds in a child
process that a step's timeout kills (`stepline.nodes.child_process`). A PDF that cannot
be read (corrupt, truncated, encrypted with a password) fails its step with the file
named, never the worker.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from stepline.files import FileInfo
from stepline.files.sniff import PDF
from stepline.nodes.base import NodeError
from stepline.nodes.document_files import unusable

if TYPE_CHECKING:
    from pypdf import PdfReader, PdfWriter

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def open_pdf(info: FileInfo, data: bytes) -> PdfReader:
    """A reader of the file's pages; NodeError naming the file if it is not a readable PDF."""
    if info.mime_type != PDF:
        raise unusable(info, "is not a PDF", expected=PDF)
    from pypdf import PdfReader  # here, not at import: pypdf costs a CLI call 115 ms

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise unusable(info, "is encrypted with a password")
        len(reader.pages)  # reads the page tree: a broken one fails here, not later
    except NodeError:
        raise
    except Exception as exc:
        raise unusable(info, f"cannot be read as a PDF: {type(exc).__name__}: {exc}") from exc
    return reader


def guarded(info: FileInfo, what: str, action: Any, *args: Any) -> Any:
    """`action(*args)`, with a pypdf failure reported as the step's error naming the file."""
    try:
        return action(*args)
    except NodeError:
        raise
    except Exception as exc:
        raise unusable(info, f"could not be {what}: {type(exc).__name__}: {exc}") from exc


def to_bytes(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def parse_pages(spec: str) -> list[tuple[int, int]]:
    """`"1-2,4"` as 1-based inclusive ranges [(1, 2), (4, 4)]; ValueError saying what is wrong."""
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        found = _RANGE.match(part)
        if found is None:
            raise ValueError(f"{part.strip()!r} is not a page or a range of pages (e.g. 1-2,4)")
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if first < 1:
            raise ValueError(f"pages are numbered from 1, got {first}")
        if last < first:
            raise ValueError(f"the range {first}-{last} ends before it starts")
        ranges.append((first, last))
    return ranges


def page_indexes(ranges: list[tuple[int, int]]) -> list[int]:
    """The 0-based page indexes of `ranges`, in their order."""
    return [page - 1 for first, last in ranges for page in range(first, last + 1)]
