"""The namespace probes again, with stepline run by an unprivileged user instead of root.

CI runs as root; a self-hosted server usually does not, and then the sandbox is made
differently (bubblewrap straight from stepline's user, no staging). The probes of
test_sandbox_namespaces.py run here in a pytest of their own as `nobody`. The interpreter
(pyenv's, under /root, which `nobody` may not enter) is made reachable in a mount
namespace of that run's own: /root is covered with an empty directory holding the
interpreter's tree alone; nothing else of the machine changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBES = "tests/nodes/test_sandbox_namespaces.py"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="not root: the probes already ran as this user"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces"),
]

# Covers /root with a tmpfs that holds only the interpreter's tree (bound back in), then
# runs the probes as nobody. $1: the interpreter's prefix, $2: a spare mount point.
SCRIPT = """
set -eu
prefix=$1 spare=$2; shift 2
case "$prefix" in
  /root/*)
    mount --bind /root "$spare"
    mount -t tmpfs -o mode=0755,size=1m tmpfs /root
    mkdir -p "$prefix"
    mount --bind "$spare${prefix#/root}" "$prefix"
    ;;
esac
exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
"""


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory `nobody` can reach and write to (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="stepline-unprivileged-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_namespace_probes_pass_when_stepline_runs_as_an_unprivileged_user(
    tmp_path: Path, work: Path
) -> None:
    spare = tmp_path / "spare"
    spare.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "TMPDIR": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    command = [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", SCRIPT, "sh", os.path.realpath(sys.base_prefix), str(spare),
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--basetemp={work / 'pytest'}", PROBES,
    ]  # fmt: skip

    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    report = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert " passed" in done.stdout and "skipped" not in done.stdout, report
