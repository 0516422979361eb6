"""The chunker: slices of the text, cut at paragraphs, then sentences, then words."""

from __future__ import annotations

from itertools import pairwise

import pytest

from stepline.retrieval.chunking import Chunk, ChunkingOptions, chunk_pages, chunk_text

SMALL = ChunkingOptions(target_chars=120, overlap_chars=30)


def _slices_hold(text: str, chunks: list[Chunk], options: ChunkingOptions) -> None:
    for index, chunk in enumerate(chunks):
        assert chunk.position == index
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk.text) <= options.target_chars


def test_short_paragraphs_pack_into_one_chunk() -> None:
    text = "First paragraph.\n\nSecond paragraph.\n\n\nThird."
    [chunk] = chunk_text(text)
    assert chunk == Chunk(text, 0, 0, len(text))


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n \t ") == []


def test_chunks_end_at_paragraph_breaks_when_paragraphs_fit() -> None:
    paragraphs = [f"Paragraph {n} " + "is about things. " * 4 for n in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = chunk_text(text, ChunkingOptions(target_chars=150, overlap_chars=0))
    _slices_hold(text, chunks, ChunkingOptions(target_chars=150, overlap_chars=0))
    assert len(chunks) == 6
    for chunk, paragraph in zip(chunks, paragraphs, strict=True):
        assert chunk.text == paragraph.strip()


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    sentences = [f"Sentence number {n} says something short." for n in range(12)]
    text = " ".join(sentences)
    chunks = chunk_text(text, SMALL)
    _slices_hold(text, chunks, SMALL)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.startswith("Sentence number")
        assert chunk.text.endswith("short.")


def test_consecutive_chunks_overlap_by_whole_units_within_the_limit() -> None:
    sentences = [f"Fact {n} is short." for n in range(40)]
    text = " ".join(sentences)
    chunks = chunk_text(text, SMALL)
    _slices_hold(text, chunks, SMALL)
    for before, after in pairwise(chunks):
        shared = before.char_end - after.char_start
        assert 0 < shared <= SMALL.overlap_chars
        assert after.char_end > before.char_end
        assert after.text.startswith("Fact")


def test_no_overlap_when_asked_for_none() -> None:
    text = " ".join(f"Fact {n} is short." for n in range(40))
    options = ChunkingOptions(target_chars=120, overlap_chars=0)
    chunks = chunk_text(text, options)
    for before, after in pairwise(chunks):
        assert after.char_start > before.char_end


def test_a_huge_paragraph_without_breaks_becomes_overlapping_windows() -> None:
    text = "x" * 10_000
    chunks = chunk_text(text, SMALL)
    _slices_hold(text, chunks, SMALL)
    assert chunks[0].char_start == 0
    assert chunks[-1].char_end == len(text)
    for before, after in pairwise(chunks):
        assert before.char_end - after.char_start == SMALL.overlap_chars
    assert len(chunks) == pytest.approx(10_000 / 90, abs=2)


def test_a_long_sentence_without_punctuation_is_cut_between_words() -> None:
    text = " ".join(f"word{n}" for n in range(500))
    chunks = chunk_text(text, SMALL)
    _slices_hold(text, chunks, SMALL)
    covered = set()
    for chunk in chunks:
        assert chunk.text.startswith("word")
        assert chunk.char_end == len(text) or text[chunk.char_end] == " "
        covered.update(chunk.text.split())
    assert covered == set(text.split())


def test_every_word_of_a_mixed_document_is_in_some_chunk() -> None:
    text = (
        "Title\n\n"
        + "A normal paragraph. With two sentences.\n\n"
        + "y" * 400
        + "\n\n"
        + " ".join(f"w{n}." for n in range(200))
    )
    chunks = chunk_text(text, SMALL)
    _slices_hold(text, chunks, SMALL)
    covered: set[str] = set()
    for chunk in chunks:
        covered.update(chunk.text.split())
    assert {w for w in text.split() if len(w) < 100} <= covered


def test_pages_are_cut_apart_with_page_numbers_and_running_positions() -> None:
    pages = ["Page one text. " * 12, "", "Page three."]
    chunks = chunk_pages(pages, SMALL)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 3}
    for chunk in chunks:
        page = pages[(chunk.page or 0) - 1]
        assert page[chunk.char_start : chunk.char_end] == chunk.text
    assert chunks[-1].text == "Page three."


@pytest.mark.parametrize(("target", "overlap"), [(10, 0), (100, 60), (100, -1)])
def test_options_out_of_range_are_refused(target: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkingOptions(target_chars=target, overlap_chars=overlap)
