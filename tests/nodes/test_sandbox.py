"""The process sandbox: real zygote, real forked children, real limits."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from stepline.sandbox import SandboxError, SandboxPool
from support.sandbox import gone, host_pids, new_marker, settings_for, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox forks")


@pytest.fixture(params=["namespaces", "process"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[SandboxPool]:
    """Each test runs with both isolations: their behaviour is the same."""
    async with SandboxPool(memory_mb=256, settings=settings_for(request.param)) as pool:
        yield pool


SLEEP_MARKED = """
import subprocess, time

def main(inputs):
    print("started", flush=True)
    subprocess.Popen(["sleep", inputs["marker"]])
    time.sleep(30)
"""
"""A job that starts a process the host can find by its marker, then sleeps."""


async def _marked_processes(marker: str) -> list[int]:
    assert await wait_until(lambda: bool(host_pids(marker)), 10), "the job's process never ran"
    return host_pids(marker)


async def test_main_return_value_comes_back(pool: SandboxPool) -> None:
    code = "def main(inputs):\n    return {'risk': inputs['amount'] / 1000, 'tags': ['a']}\n"

    outcome = await pool.execute(code, {"amount": 250}, timeout_s=10)

    assert outcome.ok, outcome
    assert outcome.value == {"risk": 0.25, "tags": ["a"]}
    assert outcome.duration_ms > 0


async def test_stdout_and_stderr_are_captured_including_raw_descriptor_writes(
    pool: SandboxPool,
) -> None:
    code = (
        "import os, sys\n"
        "def main(inputs):\n"
        "    print('hello', inputs['who'])\n"
        "    print('careful', file=sys.stderr)\n"
        "    os.write(1, b'raw bytes on fd 1\\n')\n"
        "    return 1\n"
    )

    outcome = await pool.execute(code, {"who": "world"}, timeout_s=10)

    assert outcome.ok, outcome
    assert outcome.value == 1
    assert outcome.stdout == "hello world\nraw bytes on fd 1\n"
    assert outcome.stderr == "careful\n"


async def test_output_past_the_cap_is_cut_with_a_marker(pool: SandboxPool) -> None:
    code = "def main(inputs):\n    print('x' * 200_000)\n    return None\n"

    outcome = await pool.execute(code, {}, timeout_s=10)

    assert outcome.ok, outcome
    assert outcome.stdout.startswith("x" * 1000)
    assert len(outcome.stdout) < 70_000
    assert outcome.stdout.endswith("more bytes not kept]")


async def test_exception_reports_the_users_traceback_with_line_numbers(
    pool: SandboxPool,
) -> None:
    code = (
        "def ratio(x):\n"
        "    return 1 / x\n"
        "\n"
        "def main(inputs):\n"
        "    print('before the failure')\n"
        "    return ratio(inputs['n'])\n"
    )

    outcome = await pool.execute(code, {"n": 0}, timeout_s=10, filename="<code:score>")

    assert not outcome.ok
    assert outcome.error_type == "ZeroDivisionError"
    assert outcome.error_message == "division by zero"
    assert outcome.traceback is not None
    assert 'File "<code:score>", line 6, in main' in outcome.traceback
    assert 'File "<code:score>", line 2, in ratio' in outcome.traceback
    assert "return 1 / x" in outcome.traceback
    assert "runtime" not in outcome.traceback
    assert outcome.stdout == "before the failure\n"
    assert not outcome.timed_out
    assert not outcome.memory_exceeded


async def test_async_main_is_awaited(pool: SandboxPool) -> None:
    code = (
        "import asyncio\n"
        "async def main(inputs):\n"
        "    await asyncio.sleep(0.01)\n"
        "    return {'doubled': inputs['x'] * 2}\n"
    )

    outcome = await pool.execute(code, {"x": 21}, timeout_s=10)

    assert outcome.ok, outcome
    assert outcome.value == {"doubled": 42}


async def test_timeout_kills_the_child_and_the_pool_keeps_working(
    pool: SandboxPool,
) -> None:
    marker = new_marker()

    started = time.monotonic()
    outcome = await pool.execute(SLEEP_MARKED, {"marker": marker}, timeout_s=1)
    elapsed = time.monotonic() - started

    assert outcome.timed_out
    assert not outcome.ok
    assert "1 s" in (outcome.error_message or "")
    assert elapsed < 2.5
    assert outcome.stdout == "started\n"  # output printed before the timeout is kept
    assert await wait_until(lambda: not host_pids(marker), 3), "the job's process outlived it"
    after = await pool.execute("def main(inputs):\n    return 'still here'\n", {}, timeout_s=10)
    assert after.value == "still here"


async def test_processes_a_job_starts_die_with_it(pool: SandboxPool) -> None:
    marker = new_marker()
    code = (
        "import subprocess\n"
        "def main(inputs):\n"
        "    subprocess.Popen(['sleep', inputs['marker']])\n"
        "    return 'started'\n"
    )

    outcome = await pool.execute(code, {"marker": marker}, timeout_s=10)

    assert outcome.ok, outcome
    assert await wait_until(lambda: not host_pids(marker), 3), (
        "a background process outlived its job"
    )


async def test_memory_limit_is_reported_as_memory_exceeded(pool: SandboxPool) -> None:
    code = "def main(inputs):\n    block = bytearray(600 * 1024 * 1024)\n    return len(block)\n"

    outcome = await pool.execute(code, {}, timeout_s=10, memory_mb=128)

    assert not outcome.ok
    assert outcome.memory_exceeded
    assert outcome.error_type == "MemoryError"
    same_code_more_memory = await pool.execute(code, {}, timeout_s=10, memory_mb=1024)
    assert same_code_more_memory.value == 600 * 1024 * 1024


@pytest.mark.parametrize("isolation", ["namespaces", "process"])
async def test_child_cannot_see_the_parents_secret_environment(
    monkeypatch: pytest.MonkeyPatch, isolation: str
) -> None:
    monkeypatch.setenv("STEPLINE_TEST_SECRET", "hunter2")
    code = "import os\ndef main(inputs):\n    return dict(os.environ)\n"

    async with SandboxPool(settings=settings_for(isolation)) as pool:
        outcome = await pool.execute(code, {}, timeout_s=10)

    assert outcome.ok, outcome
    assert "STEPLINE_TEST_SECRET" not in outcome.value
    assert "hunter2" not in str(outcome.value)
    assert set(outcome.value) <= {"PATH", "LANG", "LC_ALL", "HOME", "LC_CTYPE", "TMPDIR"}


async def test_child_cannot_read_the_servers_environment_through_proc(
    pool: SandboxPool,
) -> None:
    code = (
        "import os\n"
        "def main(inputs):\n"
        "    try:\n"
        "        with open(f\"/proc/{inputs['pid']}/environ\", 'rb') as f:\n"
        "            return f.read().decode(errors='replace')\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
    )

    outcome = await pool.execute(code, {"pid": os.getpid()}, timeout_s=10)

    # Process isolation: the server is not dumpable. Namespaces: it is not even there.
    assert outcome.value in ("PermissionError", "FileNotFoundError")


async def test_jobs_do_not_share_state(pool: SandboxPool) -> None:
    mutate = (
        "import builtins, math\n"
        "def main(inputs):\n"
        "    math.pi = 3\n"
        "    builtins.leaked = 'from the first job'\n"
        "    return math.pi\n"
    )
    inspect = (
        "import builtins, math\n"
        "def main(inputs):\n"
        "    return {'pi': math.pi, 'leaked': getattr(builtins, 'leaked', None)}\n"
    )

    first = await pool.execute(mutate, {}, timeout_s=10)
    second = await pool.execute(inspect, {}, timeout_s=10)

    assert first.value == 3
    assert second.value == {"pi": math.pi, "leaked": None}


async def test_twenty_concurrent_jobs_all_succeed(pool: SandboxPool) -> None:
    code = "import time\ndef main(inputs):\n    time.sleep(0.3)\n    return inputs['i'] * 10\n"

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(pool.execute(code, {"i": i}, timeout_s=20) for i in range(20))
    )
    elapsed = time.monotonic() - started

    assert [outcome.value for outcome in outcomes] == [i * 10 for i in range(20)]
    assert elapsed < 20 * 0.3, "the jobs ran one after another"


async def test_cancelling_the_awaiting_task_kills_the_child(pool: SandboxPool) -> None:
    marker = new_marker()
    task = asyncio.create_task(pool.execute(SLEEP_MARKED, {"marker": marker}, timeout_s=60))
    await _marked_processes(marker)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await wait_until(lambda: not host_pids(marker), 3), "the job outlived its task"
    after = await pool.execute("def main(inputs):\n    return 'ok'\n", {}, timeout_s=10)
    assert after.value == "ok"


async def test_a_killed_zygote_is_replaced_for_the_next_job(pool: SandboxPool) -> None:
    zygote_pid = pool.zygote_pid
    assert zygote_pid is not None

    os.kill(zygote_pid, signal.SIGKILL)
    if pool.settings.code_isolation == "namespaces":
        # bubblewrap's death reaches the server inside a moment later, time in which it could
        # still take a job; a job it took is not sent again (it may have run), so wait.
        assert await wait_until(lambda: pool.zygote_pid is None, 5)
    outcome = await pool.execute("def main(inputs):\n    return 'fresh'\n", {}, timeout_s=10)

    assert outcome.value == "fresh"
    assert pool.zygote_pid not in (None, zygote_pid)


async def test_jobs_in_flight_when_the_zygote_dies_fail_with_a_sandbox_error(
    pool: SandboxPool,
) -> None:
    marker = new_marker()
    task = asyncio.create_task(pool.execute(SLEEP_MARKED, {"marker": marker}, timeout_s=60))
    await _marked_processes(marker)
    zygote_pid = pool.zygote_pid
    assert zygote_pid is not None

    os.kill(zygote_pid, signal.SIGKILL)

    with pytest.raises(SandboxError, match="code sandbox process stopped"):
        await task
    if pool.settings.code_isolation == "namespaces":
        # (With process isolation the job's own process dies with the zygote, but what it
        # started is orphaned: one of the reasons that isolation is the weaker one.)
        assert await wait_until(lambda: not host_pids(marker), 3), "the job outlived its zygote"
    after = await pool.execute("def main(inputs):\n    return 'recovered'\n", {}, timeout_s=10)
    assert after.value == "recovered"


async def test_non_json_return_value_is_a_clear_error(pool: SandboxPool) -> None:
    outcome = await pool.execute("def main(inputs):\n    return {1, 2}\n", {}, timeout_s=10)

    assert not outcome.ok
    assert outcome.error_type == "TypeError"
    assert "JSON-serialisable" in (outcome.error_message or "")
    assert "set" in (outcome.error_message or "")


async def test_non_json_inputs_are_refused_before_anything_runs(pool: SandboxPool) -> None:
    with pytest.raises(ValueError, match="inputs must be JSON-serialisable"):
        await pool.execute("def main(inputs):\n    return 1\n", {"when": object()}, timeout_s=10)


async def test_code_without_main_is_an_error_not_a_crash(pool: SandboxPool) -> None:
    outcome = await pool.execute("x = 1\n", {}, timeout_s=10)

    assert not outcome.ok
    assert outcome.error_type == "NameError"
    assert "main(inputs)" in (outcome.error_message or "")


@pytest.mark.parametrize("isolation", ["namespaces", "process"])
async def test_close_stops_the_zygote_and_is_idempotent(isolation: str) -> None:
    pool = SandboxPool(settings=settings_for(isolation))
    await pool.start()
    zygote_pid = pool.zygote_pid
    assert zygote_pid is not None

    await pool.close()
    await pool.close()

    assert gone(zygote_pid)
    assert pool.zygote_pid is None
    with pytest.raises(SandboxError, match="closed"):
        await pool.execute("def main(inputs):\n    return 1\n", {}, timeout_s=10)


async def test_a_cold_pool_starts_its_zygote_on_the_first_job_only() -> None:
    async with SandboxPool(memory_mb=256, settings=settings_for("namespaces"), warm=False) as pool:
        assert pool.zygote_pid is None  # nothing started for a process that may run no code
        outcome = await pool.execute("def main(inputs):\n    return 'late'\n", {}, timeout_s=10)
        assert outcome.value == "late"
        assert pool.zygote_pid is not None
