"""What a code job cannot reach: the pool's and the zygote's secrets, other jobs' files."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stepline.sandbox import SandboxPool
from support.sandbox import settings_for

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox forks"),
]
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl, capabilities and /proc are Linux's"
)


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    """Process isolation (STEPLINE_CODE_ISOLATION=process): see test_sandbox_namespaces.py
    for the default, namespaces."""
    async with SandboxPool(memory_mb=256, settings=settings_for("process")) as pool:
        yield pool


READ_PROC = """
import os

def attempt(path):
    try:
        with open(path, "rb") as f:
            f.read(64)
        return "read"
    except OSError as exc:
        return type(exc).__name__

def main(inputs):
    zygote = os.getppid()
    with open(f"/proc/{zygote}/stat") as f:
        server = int(f.read().rsplit(")", 1)[1].split()[1])  # the zygote's parent
    return {
        "server": server,
        "zygote": zygote,
        "server_environ": attempt(f"/proc/{server}/environ"),
        "server_mem": attempt(f"/proc/{server}/mem"),
        "zygote_environ": attempt(f"/proc/{zygote}/environ"),
        "zygote_mem": attempt(f"/proc/{zygote}/mem"),
    }
"""


@linux_only
async def test_a_job_can_read_neither_the_servers_nor_the_zygotes_environment_or_memory(
    pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLINE_TEST_SECRET", "hunter2")

    outcome = await pool.execute(READ_PROC, {}, timeout_s=10)

    assert outcome.ok, outcome
    found = outcome.value
    assert found["server"] == os.getpid()
    assert found["zygote"] == pool.zygote_pid
    assert found["server_environ"] == "PermissionError"
    assert found["server_mem"] == "PermissionError"
    assert found["zygote_environ"] == "PermissionError"
    assert found["zygote_mem"] == "PermissionError"


@linux_only
async def test_a_job_has_no_capabilities_and_cannot_gain_privileges(pool: SandboxPool) -> None:
    code = (
        "def main(inputs):\n"
        "    with open('/proc/self/status') as f:\n"
        "        fields = dict(line.split(':', 1) for line in f)\n"
        "    return {k: fields[k].strip() for k in ('CapEff', 'CapPrm', 'NoNewPrivs')}\n"
    )

    outcome = await pool.execute(code, {}, timeout_s=10)

    assert outcome.ok, outcome
    assert int(outcome.value["CapEff"], 16) == 0
    assert int(outcome.value["CapPrm"], 16) == 0
    assert outcome.value["NoNewPrivs"] == "1"


async def test_a_job_sees_no_variable_of_the_zygotes_environment_but_its_own_few(
    pool: SandboxPool,
) -> None:
    code = (
        "import os\ndef main(inputs):\n    return {'env': dict(os.environ), 'cwd': os.getcwd()}\n"
    )

    outcome = await pool.execute(code, {}, timeout_s=10)

    assert outcome.ok, outcome
    env, cwd = outcome.value["env"], outcome.value["cwd"]
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "HOME", "TMPDIR"}
    assert env["HOME"] == env["TMPDIR"] == cwd


WRITE_EVERYWHERE = """
import os, tempfile

def main(inputs):
    written = []
    for folder in (os.getcwd(), os.environ["HOME"], tempfile.gettempdir(), ".."):
        path = os.path.abspath(os.path.join(folder, "left-by-job-1.txt"))
        with open(path, "w") as f:
            f.write("secret of job 1")
        written.append(path)
    os.makedirs("deep/er")
    with open("deep/er/file", "w") as f:
        f.write("x")
    return {"cwd": os.getcwd(), "written": written}
"""

LOOK = """
import os

def main(inputs):
    return {
        "cwd": os.getcwd(),
        "found": [path for path in inputs["paths"] if os.path.exists(path)],
        "listing": os.listdir("."),
    }
"""


async def test_a_file_written_by_one_job_is_not_visible_to_the_next(pool: SandboxPool) -> None:
    first = await pool.execute(WRITE_EVERYWHERE, {}, timeout_s=10)
    assert first.ok, first

    second = await pool.execute(LOOK, {"paths": first.value["written"]}, timeout_s=10)

    assert second.ok, second
    assert second.value["cwd"] != first.value["cwd"]
    assert second.value["found"] == []
    assert second.value["listing"] == []


async def test_a_jobs_directory_is_removed_with_what_it_locked_inside(pool: SandboxPool) -> None:
    code = (
        "import os\n"
        "def main(inputs):\n"
        "    os.makedirs('locked/inner')\n"
        "    open('locked/inner/file', 'w').close()\n"
        "    os.chmod('locked/inner', 0)\n"
        "    os.chmod('locked', 0)\n"
        "    return os.getcwd()\n"
    )

    outcome = await pool.execute(code, {}, timeout_s=10)
    assert outcome.ok, outcome
    job_dir = Path(outcome.value)

    # Removed once the zygote has reaped the child, which follows the answer closely.
    deadline = time.monotonic() + 5
    while job_dir.exists() and time.monotonic() < deadline:
        await pool.execute("def main(inputs):\n    return None\n", {}, timeout_s=10)
    assert not job_dir.exists()


async def test_two_jobs_do_not_draw_the_same_random_numbers(pool: SandboxPool) -> None:
    code = "import random\ndef main(inputs):\n    return [random.random() for _ in range(4)]\n"

    first = await pool.execute(code, {}, timeout_s=10)
    second = await pool.execute(code, {}, timeout_s=10)

    assert first.ok and second.ok
    assert first.value != second.value
