"""What a code job did, as the engine sees it, and the two ways the sandbox itself fails."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

from stepline.errors import Misconfigured, Unavailable


class SandboxError(Unavailable):
    """The sandbox itself failed (not the user's code); a later try may well succeed."""


class SandboxUnavailable(Misconfigured):
    """Code cannot run here with the isolation the operator asked for; retrying won't help.

    The message says what is missing and which setting would allow code anyway.
    """


@dataclass
class SandboxOutcome:
    """What one job did: its value, or how it failed, and what it printed."""

    ok: bool
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    """The user's traceback, its frames in the code named by `filename`; None if none."""
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    memory_exceeded: bool = False
    duration_ms: float = 0.0


def decode_outcome(
    header: dict[str, Any], payload: bytes, timeout_s: float, memory_mb: int, duration_ms: float
) -> SandboxOutcome:
    """Turns the zygote's `done` event into an outcome."""
    if "error" in header:
        raise SandboxError(f"the code sandbox could not run the job: {header['error']}")
    result_size, out_size, err_size = header["sizes"]
    out_dropped, err_dropped = header["dropped"]
    result = payload[:result_size]
    stdout = _text(payload[result_size : result_size + out_size], out_dropped)
    stderr = _text(payload[result_size + out_size : result_size + out_size + err_size], err_dropped)
    outcome = SandboxOutcome(ok=False, stdout=stdout, stderr=stderr, duration_ms=duration_ms)
    returncode: int = header["returncode"]
    if header["timed_out"]:
        outcome.timed_out = True
        outcome.error_type = "TimeoutError"
        outcome.error_message = f"timed out after {timeout_s:g} s"
    elif returncode == 0 and result:
        _read_result(outcome, result)
    elif returncode == -signal.SIGKILL:
        # Not killed by the zygote (that is a timeout): the kernel's out-of-memory killer.
        outcome.memory_exceeded = True
        outcome.error_type = "MemoryError"
        outcome.error_message = (
            f"the code's process was killed, most likely for using more than {memory_mb} MB"
        )
    elif returncode == -signal.SIGXCPU:
        outcome.timed_out = True
        outcome.error_type = "TimeoutError"
        outcome.error_message = "the code used up its CPU time limit"
    elif returncode < 0:
        outcome.error_type = "ProcessCrashed"
        outcome.error_message = f"the code's process died of {_signal_name(-returncode)}"
    else:
        outcome.error_type = "ProcessExited"
        outcome.error_message = (
            f"the code's process exited with status {returncode} before main() returned"
        )
    return outcome


def _read_result(outcome: SandboxOutcome, result: bytes) -> None:
    try:
        decoded = json.loads(result)
    except ValueError:
        outcome.error_type = "InvalidResult"
        outcome.error_message = "the code's process wrote an unreadable result"
        return
    if decoded.get("ok"):
        outcome.ok = True
        outcome.value = decoded.get("value")
        return
    outcome.error_type = decoded.get("error_type") or "Error"
    outcome.error_message = decoded.get("error_message") or ""
    outcome.traceback = decoded.get("traceback")
    outcome.memory_exceeded = outcome.error_type == "MemoryError"


def _text(data: bytes, dropped: int) -> str:
    # Printed NUL characters written as the JSON escape: no database stores them raw.
    text = data.decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    if dropped:
        text += f"\n[... {dropped} more bytes not kept]"
    return text


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
