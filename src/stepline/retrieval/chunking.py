"""Cutting a document's text into chunks for search: paragraph and sentence aware.

A chunk is a slice of the source text (`text[char_start:char_end]`, exactly), so a search
hit points back at where it came from. The text is cut into units at paragraph breaks
(a blank line), a paragraph longer than the target at sentence ends, a sentence longer
than that at spaces; units are then packed into chunks of at most `target_chars`, each
chunk starting with the last units of the one before it (at most `overlap_chars` of them)
so that a passage cut between two chunks is whole in one. A run of text with no break at
all (a 50,000-character line) is cut into windows of `target_chars` that overlap by
`overlap_chars`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

DEFAULT_TARGET_CHARS = 1000
DEFAULT_OVERLAP_CHARS = 150
MIN_TARGET_CHARS = 50

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ChunkingOptions:
    """How big chunks are and how much consecutive chunks share, in characters."""

    target_chars: int = DEFAULT_TARGET_CHARS
    overlap_chars: int = DEFAULT_OVERLAP_CHARS

    def __post_init__(self) -> None:
        if self.target_chars < MIN_TARGET_CHARS:
            raise ValueError(f"target_chars must be at least {MIN_TARGET_CHARS}")
        if not 0 <= self.overlap_chars <= self.target_chars // 2:
            raise ValueError("overlap_chars must be between 0 and half of target_chars")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a source: its text, its place among the source's chunks (`position`,
    from 0), where it is in the text it was cut from, and the page of that text (None for
    a text without pages)."""

    text: str
    position: int
    char_start: int
    char_end: int
    page: int | None = None


def chunk_text(text: str, options: ChunkingOptions | None = None) -> list[Chunk]:
    """The chunks of one text (none if it is blank), positions from 0."""
    return _number(_spans(text, options or ChunkingOptions()), text, None)


def chunk_pages(pages: Sequence[str], options: ChunkingOptions | None = None) -> list[Chunk]:
    """The chunks of a paged document: each page cut on its own (a chunk never spans two
    pages), pages numbered from 1, offsets within the page, positions running across."""
    chunks: list[Chunk] = []
    for number, page in enumerate(pages, start=1):
        spans = _spans(page, options or ChunkingOptions())
        chunks.extend(_number(spans, page, number, start=len(chunks)))
    return chunks


def _number(
    spans: list[tuple[int, int]], text: str, page: int | None, *, start: int = 0
) -> list[Chunk]:
    return [Chunk(text[a:b], start + index, a, b, page) for index, (a, b) in enumerate(spans)]


def _spans(text: str, options: ChunkingOptions) -> list[tuple[int, int]]:
    """(start, end) of each chunk of `text`."""
    target, overlap = options.target_chars, options.overlap_chars
    spans: list[tuple[int, int]] = []
    current: list[tuple[int, int]] = []
    fresh = False  # whether `current` holds a unit no emitted chunk has

    def flush() -> list[tuple[int, int]]:
        """Emit the chunk being packed; the units the next one starts with."""
        spans.append((current[0][0], current[-1][1]))
        kept: list[tuple[int, int]] = []
        for unit in reversed(current):
            if current[-1][1] - unit[0] > overlap:
                break
            kept.insert(0, unit)
        return kept if len(kept) < len(current) else []

    for unit in _units(text, 0, len(text), target):
        if unit[1] - unit[0] > target:  # no break inside: overlapping windows
            if fresh:
                flush()
            current, fresh = [], False
            spans.extend(_windows(text, unit, target, overlap))
            continue
        if current and unit[1] - current[0][0] > target:
            current = flush() if fresh else current
            while current and unit[1] - current[0][0] > target:
                current.pop(0)
        current.append(unit)
        fresh = True
    if fresh:
        flush()
    return spans


def _units(text: str, start: int, end: int, target: int) -> Iterator[tuple[int, int]]:
    """The smallest pieces a chunk is made of: paragraphs, or the sentences of a long one,
    or the words of a long sentence; each trimmed of surrounding white space."""
    for a, b in _split(text, start, end, _PARAGRAPH_BREAK):
        if b - a <= target:
            yield a, b
            continue
        for c, d in _split(text, a, b, _SENTENCE_END):
            if d - c <= target:
                yield c, d
            else:
                yield from _split(text, c, d, _SPACE)


def _split(
    text: str, start: int, end: int, separator: re.Pattern[str]
) -> Iterator[tuple[int, int]]:
    """The non-blank pieces of text[start:end] between separators, trimmed."""
    position = start
    for match in separator.finditer(text, start, end):
        yield from _trimmed(text, position, match.start())
        position = match.end()
    yield from _trimmed(text, position, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def _windows(
    text: str, unit: tuple[int, int], target: int, overlap: int
) -> Iterator[tuple[int, int]]:
    start, end = unit
    while True:
        stop = min(start + target, end)
        yield start, stop
        if stop >= end:
            return
        start = stop - overlap
