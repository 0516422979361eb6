"""A large upload through a real `stepline serve` is streamed to the storage: the server's
peak memory barely grows; one past the limit is a 413 that leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.server import ServeProcess, make_key, start_server

MIB = 1024 * 1024
LIMIT = 96 * MIB
LARGE = 64 * MIB
GROWTH_ALLOWED = 24 * MIB
"""Far below the upload itself: holding it in memory, once or joined, is 64-128 MiB."""


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    home: Path = tmp_path_factory.mktemp("serve-large-files") / "home"
    server = start_server(home, env={"STEPLINE_MAX_FILE_BYTES": str(LIMIT)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    key = make_key(server.database_url, "large-files")
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        yield client


def write_file(path: Path, size: int) -> str:
    """A file of `size` bytes of text (not one repeated block: nothing compresses it away),
    written a MiB at a time; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for n in range(size // MIB):
            block = (f"{n:08d} ".encode() + os.urandom(48).hex().encode() + b"\n") * (MIB // 106)
            block = block.ljust(MIB, b".")
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_large_upload_is_streamed_not_held_in_memory(
    server: ServeProcess, http: httpx.Client, tmp_path: Path
) -> None:
    # A first upload warms the server up (imports, pools, the database's first writes).
    assert http.post("/v1/files", files={"file": ("warm.txt", b"warm\n")}).status_code == 201
    before = peak_rss(server.process.pid)
    path = tmp_path / "large.txt"
    sha256 = write_file(path, LARGE)
    with path.open("rb") as content:
        response = http.post("/v1/files", files={"file": ("large.txt", content, "text/plain")})
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["size"] == LARGE and made["sha256"] == sha256
    assert made["mime_type"] == "text/plain"
    growth = peak_rss(server.process.pid) - before
    assert growth < GROWTH_ALLOWED, f"the server's peak memory grew by {growth / MIB:.1f} MiB"

    downloaded = hashlib.sha256()
    with http.stream("GET", f"/v1/files/{made['id']}/content") as stream:
        for chunk in stream.iter_bytes():
            downloaded.update(chunk)
    assert downloaded.hexdigest() == sha256


def test_an_upload_past_the_limit_is_413_and_leaves_no_temporary_file(
    server: ServeProcess, http: httpx.Client
) -> None:
    staging = server.home / "files" / "tmp"
    assert http.post("/v1/files", files={"file": ("ok.txt", b"ok\n")}).status_code == 201
    assert staging.is_dir()
    too_big = b"x" * (LIMIT + 1)
    response = http.post("/v1/files", files={"file": ("big.bin", too_big)})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert "STEPLINE_MAX_FILE_BYTES" in error["message"] and str(LIMIT) in error["message"]
    assert list(staging.iterdir()) == []
    assert all(f["filename"] != "big.bin" for f in http.get("/v1/files").json()["data"])
