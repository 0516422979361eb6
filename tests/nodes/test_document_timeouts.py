"""A document step's timeout stops the document work itself: a PDF slow to parse fails
its step with a timeout, and nothing goes on parsing it afterwards (no thread of this
process, no child process), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepline.records import RunStatus, StepStatus
from stepline.store import Store
from support.documents import DocumentBench
from support.pdfs import build_pdf, slow_pdf

TIMEOUT_S = 1.0
IDLE_CPU_S = 0.3
"""CPU this process and its children may spend in a quiet 1.5 s (parsing on would spend ~1.5 s)."""


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    return await DocumentBench.open(store, tmp_path)


def descendants(root: int | None = None) -> list[int]:
    """The ids of a process's (this one's) children, their children, and so on."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [os.getpid() if root is None else root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu() -> float:
    """CPU spent by this process (all its threads) and its descendants over 1.5 quiet
    seconds (the event loop is blocked: only threads and other processes can run)."""
    others = descendants()
    before = time.process_time() + sum(cpu_seconds(pid) for pid in others)
    time.sleep(1.5)
    return time.process_time() + sum(cpu_seconds(pid) for pid in others) - before


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_pdf_slow_to_parse_times_out_and_is_not_parsed_on(bench: DocumentBench) -> None:
    # A first parse starts the child processes' server: not what this test measures.
    warm = await bench.upload(build_pdf(["warm"]), "warm.pdf")
    node = {"id": "parse", "type": "parse", "config": {"document": "{{ inputs.doc }}"}}
    assert (await bench.run([node], {"doc": {"file_id": str(warm.id)}})).run.status is (
        RunStatus.completed
    )
    saved = await bench.upload(slow_pdf(), "slow.pdf")
    started = time.monotonic()
    out = await bench.run([{**node, "timeout_s": TIMEOUT_S}], {"doc": {"file_id": str(saved.id)}})
    elapsed = time.monotonic() - started
    assert out.run.status is RunStatus.failed
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error_details is not None and step.error_details.type == "TimeoutError"
    assert elapsed < TIMEOUT_S + 5, f"the step took {elapsed:.1f} s to fail"
    spent = busy_cpu()
    assert spent < IDLE_CPU_S, f"{spent:.2f} s of CPU went on after the step timed out"


async def test_a_document_steps_error_comes_back_from_its_child_process(
    bench: DocumentBench,
) -> None:
    saved = await bench.upload(b"%PDF-1.4\nnot really a pdf", "broken.pdf")
    node = {"id": "parse", "type": "parse", "config": {"document": "{{ inputs.doc }}"}}
    out = await bench.run([node], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error is not None and "broken.pdf" in step.error
    assert step.error_details is not None and step.error_details.type == "UnusableDocument"


# Starts document work in a child process and waits; the test kills it with SIGKILL.
_HOLDER = """
import asyncio, sys
from pathlib import Path
from stepline.files.access import FileInfo
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_text import parse_document
from uuid import uuid4

data = Path(sys.argv[1]).read_bytes()
info = FileInfo(file_id=uuid4(), filename="slow.pdf", mime_type="application/pdf",
                size=len(data))
print("parsing", flush=True)
asyncio.run(run_in_child(parse_document, info, data, 1_000_000))
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_document_work_dies_with_a_worker_killed_by_sigkill(tmp_path: Path) -> None:
    pdf = tmp_path / "slow.pdf"
    pdf.write_bytes(slow_pdf())
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(pdf)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "parsing"
        deadline = time.monotonic() + 30
        while len(below := descendants(holder.pid)) < 2:  # the fork server and its child
            assert time.monotonic() < deadline, "the document's child process never started"
            time.sleep(0.05)
        holder.kill()
        holder.wait(10)
        deadline = time.monotonic() + 8
        while alive := [pid for pid in below if Path(f"/proc/{pid}").exists() and not _zombie(pid)]:
            assert time.monotonic() < deadline, f"still running after the worker died: {alive}"
            time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
