"""What a code job cannot reach in namespaces (the default isolation), probed as an attacker.

Each probe is real code run in the real sandbox (bubblewrap), checked from the host: the
server's files and database, other jobs' files and processes, the server's processes, the
network, and the limits on processes, /tmp and memory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import stepline
from stepline.sandbox import SandboxPool, SandboxUnavailable
from support.sandbox import host_pids, host_uid, new_marker, settings_for, wait_until

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/ns/user"), reason="Linux only")


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    settings = settings_for("namespaces", code_max_processes=16, code_tmp_mb=8)
    async with SandboxPool(memory_mb=256, settings=settings) as pool:
        yield pool


async def run(pool: SandboxPool, code: str, inputs: object = None, timeout_s: float = 20) -> object:
    outcome = await pool.execute(code, inputs or {}, timeout_s=timeout_s)
    assert outcome.ok, outcome
    return outcome.value


TRY_OPEN = """
def main(inputs):
    found = {}
    for path in inputs["paths"]:
        try:
            with open(path, "rb") as f:
                found[path] = f.read(16).decode(errors="replace")
        except OSError as exc:
            found[path] = type(exc).__name__
    return found
"""


async def test_a_job_sees_no_file_of_the_server(pool: SandboxPool, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("stepline.db", "stepline.db-wal", "credentials", "secrets.key"):
        (home / name).write_text("SECRET-" + name)
        (home / name).chmod(0o644)  # even readable by all, it must not be in view
    home.chmod(0o755)
    paths = [str(path) for path in home.iterdir()]
    paths += [stepline.__file__, "/etc/shadow", "/etc/passwd", f"/proc/{os.getpid()}/environ"]

    found = await run(pool, TRY_OPEN, {"paths": paths})

    assert found == {path: "FileNotFoundError" for path in paths}


async def test_a_job_cannot_write_outside_its_own_tmp(pool: SandboxPool) -> None:
    code = """
import os
def main(inputs):
    result = {}
    for path in ("/evil", "/usr/evil", "/opt/stepline/runtime/server.py", "/etc/evil",
                 "/dev/evil", "/tmp/fine"):
        try:
            with open(path, "w") as f:
                f.write("x")
            result[path] = "written"
        except OSError as exc:
            result[path] = exc.errno
    with open("/dev/null", "w") as f:  # devices still work on the read-only /dev
        f.write("fine")
    return result
"""
    import errno

    found = await run(pool, code)

    assert found.pop("/tmp/fine") == "written"  # type: ignore[union-attr]
    assert set(found.values()) <= {errno.EROFS, errno.EACCES, errno.ENOENT}  # type: ignore[union-attr]


async def test_a_jobs_tmp_is_its_own_even_while_another_runs(pool: SandboxPool) -> None:
    writer = """
import os, time
def main(inputs):
    with open("/tmp/left-by-job-1", "w") as f:
        f.write("secret of job 1")
    os.makedirs("/dev/shm/job1", exist_ok=True)
    time.sleep(1.5)
    return sorted(os.listdir("/tmp"))
"""
    reader = """
import os
def main(inputs):
    return {"tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm"), "cwd": os.getcwd(),
            "home": os.environ["HOME"]}
"""
    first = asyncio.create_task(run(pool, writer))
    await asyncio.sleep(0.5)
    during = await run(pool, reader)
    assert await first == ["left-by-job-1"]
    after = await run(pool, reader)

    assert during == after == {"tmp": [], "shm": [], "cwd": "/tmp", "home": "/tmp"}


async def test_tmp_is_size_limited(pool: SandboxPool) -> None:
    code = """
import errno
def main(inputs):
    try:
        with open("/tmp/big", "wb") as f:
            for _ in range(16):
                f.write(b"x" * (1024 * 1024))
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "wrote 16 MB"
"""
    assert await run(pool, code) == "ENOSPC"  # code_tmp_mb=8


async def test_a_job_sees_and_signals_only_its_own_processes(pool: SandboxPool) -> None:
    marker = new_marker()
    sleeper = (
        "import subprocess, time\n"
        "def main(inputs):\n"
        "    subprocess.Popen(['sleep', inputs['marker']])\n"
        "    time.sleep(2)\n"
        "    return 'undisturbed'\n"
    )
    attacker = """
import os, signal
def main(inputs):
    pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    refused = {}
    for pid in (inputs["server"], inputs["zygote"], 1):
        try:
            os.kill(pid, 0)
            refused[pid] = "reachable"
        except OSError as exc:
            refused[pid] = type(exc).__name__
    try:
        os.kill(-1, signal.SIGKILL)  # every process this job may signal but itself
        everyone = "sent"
    except OSError as exc:
        everyone = type(exc).__name__
    return {"me": os.getpid(), "pids": pids, "refused": refused, "everyone": everyone}
"""
    victim = asyncio.create_task(run(pool, sleeper, {"marker": marker}))
    assert await wait_until(lambda: bool(host_pids(marker)), 10)
    zygote = pool.zygote_pid

    found = await run(pool, attacker, {"server": os.getpid(), "zygote": zygote})

    assert found["me"] == 1  # type: ignore[index]
    assert found["pids"] == [1]  # type: ignore[index]
    refused = found["refused"]  # type: ignore[index]
    assert refused[str(os.getpid())] == refused[str(zygote)] == "ProcessLookupError"
    assert refused["1"] == "reachable"  # itself, not the host's init
    assert await victim == "undisturbed"
    assert pool.zygote_pid == zygote


async def test_a_setsid_grandchild_dies_with_its_job(pool: SandboxPool) -> None:
    marker = new_marker()
    code = """
import os, time
def main(inputs):
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", inputs["marker"]])
        os._exit(0)
    os.waitpid(child, 0)
    for _ in range(100):  # the grandchild runs, detached, before the job returns
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if inputs["marker"].encode() in f.read().split(b"\\0"):
                        return "detached and running"
            except OSError:
                pass
        time.sleep(0.02)
    return "never ran"
"""
    assert await run(pool, code, {"marker": marker}) == "detached and running"

    assert await wait_until(lambda: not host_pids(marker), 3), "the grandchild outlived its job"


async def test_a_job_runs_as_an_unprivileged_user_without_capabilities(pool: SandboxPool) -> None:
    marker = new_marker()
    code = """
import os, subprocess, time
def main(inputs):
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    subprocess.Popen(["sleep", inputs["marker"]])
    time.sleep(1)
    status = {k: fields[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")}
    return {"uid": os.getuid(), "gid": os.getgid(), **status}
"""
    task = asyncio.create_task(run(pool, code, {"marker": marker}))
    assert await wait_until(lambda: bool(host_pids(marker)), 10)
    uids = {host_uid(pid) for pid in host_pids(marker)}
    found = await task

    assert found["uid"] == found["gid"] == 1000  # type: ignore[index]
    assert int(found["CapEff"], 16) == int(found["CapPrm"], 16) == 0  # type: ignore[index]
    assert int(found["CapBnd"], 16) == 0  # type: ignore[index]
    assert found["NoNewPrivs"] == "1"  # type: ignore[index]
    assert 0 not in uids
    if os.geteuid() == 0:
        assert uids == {65534}  # nobody, never the server's root
    else:
        # An unprivileged user namespace can map only the user that made it.
        assert uids == {os.geteuid()}


async def test_a_job_has_no_network_not_even_loopback(pool: SandboxPool) -> None:
    accepted: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = """
import socket
def main(inputs):
    found = {}
    for host in ("127.0.0.1", "10.0.0.1", "8.8.8.8"):
        try:
            socket.create_connection((host, inputs["port"]), timeout=2).close()
            found[host] = "connected"
        except OSError as exc:
            found[host] = type(exc).__name__
    return found
"""
    try:
        found = await run(pool, code, {"port": port})
    finally:
        server.close()
        await server.wait_closed()

    assert "connected" not in found.values()  # type: ignore[union-attr]
    assert accepted == []


async def test_a_fork_bomb_hits_the_process_limit_and_dies_with_its_job(
    pool: SandboxPool,
) -> None:
    code = """
import os, time
def main(inputs):
    started = 0
    try:
        for _ in range(200):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            started += 1
    except OSError as exc:
        time.sleep(inputs.get("hold", 0))  # holding every process it may have
        return {"started": started, "error": type(exc).__name__}
    return {"started": started, "error": None}
"""
    neighbour = """
import os, time
def main(inputs):
    time.sleep(0.5)  # while the bomb holds every process it may have
    started = 0
    for _ in range(5):
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        started += 1
    return started
"""
    bomb = asyncio.create_task(run(pool, code, {"hold": 1.5}))
    assert await run(pool, neighbour) == 5  # not starved by the other job's bomb
    found = await bomb

    assert found["error"] == "BlockingIOError"  # type: ignore[index]
    assert 14 <= found["started"] <= 15  # type: ignore[index]  # code_max_processes=16
    # The next job is not starved either: the bomb's processes died with it.
    assert (await run(pool, code))["started"] == found["started"]  # type: ignore[index]


async def test_memory_over_the_ceiling_is_held_to_the_ceiling() -> None:
    settings = settings_for("namespaces", code_max_memory_mb=200)
    code = "def main(inputs):\n    return len(bytearray(400 * 1024 * 1024))\n"

    async with SandboxPool(settings=settings) as pool:
        outcome = await pool.execute(code, {}, timeout_s=20, memory_mb=3000)

    assert outcome.memory_exceeded


async def test_without_bubblewrap_code_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found

    pool = SandboxPool(settings=settings_for("namespaces"))
    try:
        with pytest.raises(SandboxUnavailable, match="STEPLINE_CODE_ISOLATION=process"):
            await pool.execute("def main(inputs):\n    return 1\n", {}, timeout_s=5)
    finally:
        await pool.close()


async def test_a_killed_job_takes_its_whole_namespace_with_it(pool: SandboxPool) -> None:
    marker = new_marker()
    code = """
import os, subprocess, time
def main(inputs):
    for _ in range(3):
        subprocess.Popen(["sleep", inputs["marker"]], start_new_session=True)
    time.sleep(60)
"""
    outcome = await pool.execute(code, {"marker": marker}, timeout_s=1)

    assert outcome.timed_out
    # Each in a session of its own: the kernel kills them as PID 1 of their namespace dies.
    assert await wait_until(lambda: not host_pids(marker), 3)


FETCH = """
import json, socket, urllib.request, urllib.error

def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return [response.status, response.read().decode()]
    except urllib.error.HTTPError as exc:
        return [exc.code, exc.read().decode()]
    except OSError as exc:
        return [type(exc).__name__, str(exc)]

def tunnel(host, port):
    # CONNECT through the announced proxy, then plain HTTP inside the tunnel (as HTTPS would)
    proxy = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    proxy.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\n\\r\\n".encode())
    status = proxy.recv(1024).split(b"\\r\\n")[0].decode()
    if " 200 " not in status:
        return status
    proxy.sendall(f"GET /tunnelled HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
    answer = b""
    while chunk := proxy.recv(4096):
        answer += chunk
    return answer.split(b"\\r\\n")[0].decode()

def direct(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__

def main(inputs):
    allowed, other = inputs["allowed"], inputs["other"]
    result = {"direct": direct(allowed)}
    if inputs["proxied"]:
        result["allowed"] = fetch(f"http://127.0.0.1:{allowed}/hello")
        result["other_port"] = fetch(f"http://127.0.0.1:{other}/hello")
        result["by_name"] = fetch(f"http://localhost:{allowed}/hello")
        result["tunnel"] = tunnel("127.0.0.1", allowed)
        result["tunnel_other"] = tunnel("127.0.0.1", other)
    else:
        result["allowed"] = fetch(f"http://127.0.0.1:{allowed}/hello")
    return result
"""


async def test_network_reaches_only_the_operators_allow_list_through_the_proxy(
    tmp_path: Path,
) -> None:
    from support.http_server import loopback_server

    def hello(n: int, body: object) -> tuple[int, dict[str, str], object]:
        return 200, {}, {"hello": n}

    with (
        loopback_server({"/hello": hello, "/tunnelled": hello}) as allowed,
        loopback_server({"/hello": hello}) as other,
    ):
        allowed_port = int(allowed.url.rsplit(":", 1)[1])
        other_port = int(other.url.rsplit(":", 1)[1])
        # Loopback is reachable only when named as an address: never through a name.
        settings = settings_for("namespaces", code_network=f"127.0.0.1:{allowed_port},localhost")
        inputs = {"allowed": allowed_port, "other": other_port}
        async with SandboxPool(settings=settings) as pool:
            on = await pool.execute(FETCH, {**inputs, "proxied": True}, timeout_s=30, network=True)
            off = await pool.execute(FETCH, {**inputs, "proxied": False}, timeout_s=30)

    assert on.ok, on
    found = on.value
    assert found["direct"] in ("ConnectionRefusedError", "OSError")  # only the proxy leads out
    assert found["allowed"][0] == 200 and '"hello"' in found["allowed"][1]
    assert found["other_port"][0] == 403
    assert "STEPLINE_CODE_NETWORK" in found["other_port"][1]
    assert found["by_name"][0] == 403 and "loopback" in found["by_name"][1]
    assert " 200 " in found["tunnel"]
    assert " 403 " in found["tunnel_other"]
    assert other.hit_count("/hello") == 0
    assert allowed.hit_count("/hello") == 1 and allowed.hit_count("/tunnelled") == 1
    # A job that did not ask for the network has none, allow-list or not.
    assert off.ok, off
    assert off.value["direct"] == "OSError"
    assert off.value["allowed"][0] in ("URLError", "OSError")


async def test_asking_for_network_where_the_operator_allows_none_is_refused() -> None:
    pool = SandboxPool(settings=settings_for("namespaces"))
    try:
        with pytest.raises(SandboxUnavailable, match="STEPLINE_CODE_NETWORK=none"):
            await pool.execute("def main(inputs):\n    return 1\n", {}, timeout_s=5, network=True)
    finally:
        await pool.close()


async def test_where_the_kernel_refuses_namespaces_code_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What bubblewrap says where user namespaces are disabled (sysctl, container policy);
    # in a folder `nobody` can read, as root runs bubblewrap as `nobody`.
    folder = Path(tempfile.mkdtemp(prefix="stepline-fake-bwrap-"))
    folder.chmod(0o755)
    fake = folder / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")

    pool = SandboxPool(settings=settings_for("namespaces"))
    try:
        with pytest.raises(SandboxUnavailable) as caught:
            await pool.execute("def main(inputs):\n    return 1\n", {}, timeout_s=5)
    finally:
        await pool.close()
        shutil.rmtree(folder)

    assert "No permissions to creating new namespace" in str(caught.value)
    assert "STEPLINE_CODE_ISOLATION=process" in str(caught.value)
