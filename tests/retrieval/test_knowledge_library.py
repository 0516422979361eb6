"""The knowledge library: texts and an organization's files (parsed, chunked) added to
collections and searched, with stepline's error kinds; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import uuid4

import pytest

from stepline.errors import Conflict, InvalidRequest, NotFound
from stepline.retrieval.access import CollectionNotFound
from stepline.retrieval.chunking import ChunkingOptions
from stepline.retrieval.library import KnowledgeLibrary, SourceNotFound
from stepline.store import Store
from support.documents import DocumentBench
from support.pdfs import build_pdf, slow_pdf


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


@pytest.fixture
def library(bench: DocumentBench) -> KnowledgeLibrary:
    return KnowledgeLibrary(bench.store, bench.library)


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        (b"# Heading\n\nThe markdown mentions zeppelins.", "notes.md", "zeppelins"),
        (
            b"<html><head><style>p{}</style></head><body><p>The page mentions "
            b"<b>zeppelins</b>.</p><script>var hidden = 1;</script></body></html>",
            "page.html",
            "zeppelins",
        ),
        (json.dumps({"craft": "zeppelins", "n": 3}).encode(), "data.json", "zeppelins"),
        (b"craft,count\nzeppelins,3\nballoons,5\n", "table.csv", "zeppelins"),
        (b"Plain text about zeppelins.", "plain.txt", "zeppelins"),
    ],
)
async def test_a_file_is_parsed_chunked_and_found(
    bench: DocumentBench, library: KnowledgeLibrary, content: bytes, name: str, needle: str
) -> None:
    org = bench.organization_id
    collection = await library.create(org, "files")
    saved = await bench.upload(content, name)
    source = await library.add_file(org, collection.id, saved.id)
    assert (source.source, source.file_id, source.chunk_count) == (name, saved.id, 1)
    found = await library.search(org, "files", needle)
    [hit] = found.hits
    assert (hit.file_id, hit.source, hit.position) == (saved.id, name, 0)
    assert needle in hit.text
    assert "hidden" not in hit.text and "<" not in hit.text


async def test_a_pdf_is_chunked_by_page(bench: DocumentBench, library: KnowledgeLibrary) -> None:
    org = bench.organization_id
    collection = await library.create(org, "pdfs")
    pdf = build_pdf(["Invoice for zeppelin parts", None, "Terms: payment within thirty days"])
    saved = await bench.upload(pdf, "invoice.pdf")
    source = await library.add_file(org, collection.id, saved.id, source="the invoice")
    assert source.chunk_count == 2
    [hit] = (await library.search(org, collection.id, "payment terms")).hits
    assert (hit.page, hit.position, hit.source) == (3, 1, "the invoice")
    assert hit.text == "Terms: payment within thirty days"


async def test_an_unparseable_file_is_an_invalid_request(
    bench: DocumentBench, library: KnowledgeLibrary
) -> None:
    org = bench.organization_id
    collection = await library.create(org, "files")
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    saved = await bench.upload(png, "image.png")
    with pytest.raises(InvalidRequest, match=r"image\.png"):
        await library.add_file(org, collection.id, saved.id)
    assert await library.list_sources(org, collection.id) == []


async def test_another_organizations_file_or_collection_is_not_found(
    bench: DocumentBench, library: KnowledgeLibrary
) -> None:
    org = bench.organization_id
    other = await bench.store.organizations.ensure("other")
    ours = await library.create(org, "ours")
    theirs = await library.create(other, "theirs")
    their_file = await bench.library.save(other, b"their secret zeppelins", "secret.txt")
    with pytest.raises(NotFound):
        await library.add_file(org, ours.id, their_file.id)
    with pytest.raises(CollectionNotFound):
        await library.add_text(org, theirs.id, "intrusion", source="x")
    with pytest.raises(CollectionNotFound):
        await library.search(org, theirs.id, "zeppelins")
    with pytest.raises(CollectionNotFound):
        await library.search(org, "theirs", "zeppelins")
    with pytest.raises(CollectionNotFound):
        await library.delete(org, theirs.id)
    with pytest.raises(SourceNotFound):
        await library.remove_source(org, ours.id, uuid4())


async def test_texts_are_chunked_as_asked_and_names_are_checked(
    bench: DocumentBench, library: KnowledgeLibrary
) -> None:
    org = bench.organization_id
    collection = await library.create(org, "texts", "some texts")
    with pytest.raises(Conflict):
        await library.create(org, "texts")
    with pytest.raises(InvalidRequest):
        await library.create(org, "")
    text = " ".join(f"Sentence {n} about gliders." for n in range(50))
    options = ChunkingOptions(target_chars=200, overlap_chars=40)
    source = await library.add_text(org, collection.id, text, source="gliders", options=options)
    assert source.chunk_count > 5
    found = await library.search(org, "texts", "gliders", top_k=100)
    assert len(found.hits) == source.chunk_count
    assert found.collection_name == "texts"
    with pytest.raises(InvalidRequest):
        await library.add_text(org, collection.id, "text", source="  ")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_file_slow_to_read_is_refused_within_the_parse_timeout(
    bench: DocumentBench,
) -> None:
    # A crafted PDF that takes pypdf about 20 s: the add gives up at the timeout (its
    # child process killed), rather than a thread parsing on for as long as it takes.
    library = KnowledgeLibrary(bench.store, bench.library, parse_timeout_s=1.0)
    org = bench.organization_id
    collection = await library.create(org, "slow")
    warm = await bench.upload(build_pdf(["warm"]), "warm.pdf")  # starts the fork server
    await library.add_file(org, collection.id, warm.id)
    saved = await bench.upload(slow_pdf(), "slow.pdf")
    started = time.monotonic()
    with pytest.raises(InvalidRequest, match=r"'slow.pdf' took longer than 1 s"):
        await library.add_file(org, collection.id, saved.id)
    assert time.monotonic() - started < 6
    assert [s.source for s in await library.list_sources(org, collection.id)] == ["warm.pdf"]
