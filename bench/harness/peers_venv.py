"""The peers' own virtualenv (bench/.peers-venv), made from bench/peers/requirements.txt.

Prefect and DBOS are never stepline dependencies: they live here, installed by the bench
the first time `--peers` runs, and again whenever requirements.txt changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from harness.plan import BENCH, log

VENV = BENCH / ".peers-venv"
REQUIREMENTS = BENCH / "peers" / "requirements.txt"
_STAMP = VENV / ".bench-requirements.sha256"


def ensure_peers_venv() -> Path:
    """The peers' Python, installing the virtualenv first if it is missing or stale."""
    python = VENV / "bin" / "python"
    wanted = _digest()
    if python.exists() and _STAMP.exists() and _STAMP.read_text().strip() == wanted:
        return python
    log(f"installing the peers into {VENV} (a few minutes the first time)")
    if not python.exists():
        subprocess.run([_base_python(), "-m", "venv", str(VENV)], check=True)
    install_log = VENV / "install.log"
    with install_log.open("w") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-r", str(REQUIREMENTS)],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(install_log.read_text().splitlines()[-20:])
        raise RuntimeError(f"installing the peers failed (see {install_log}):\n{tail}")
    _STAMP.write_text(wanted)
    return python


def _digest() -> str:
    text = REQUIREMENTS.read_bytes() + sys.version.encode()
    return hashlib.sha256(text).hexdigest()


def _base_python() -> str:
    """The interpreter under stepline's virtualenv: the peers' venv must not nest in it."""
    base = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    return str(base) if base.exists() else sys.executable
