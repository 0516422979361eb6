"""The code sandbox: runs user Python in confined, limited, warm-forked processes.

`SandboxPool` is what the `code` node kind uses; `launch` says how the fork server is
confined, `runtime` is what runs inside it.
"""

from stepline.sandbox.launch import isolation_problem, process_isolation_warning
from stepline.sandbox.outcome import SandboxError, SandboxOutcome, SandboxUnavailable
from stepline.sandbox.pool import SandboxPool, protect_this_process

__all__ = [
    "SandboxError",
    "SandboxOutcome",
    "SandboxPool",
    "SandboxUnavailable",
    "isolation_problem",
    "process_isolation_warning",
    "protect_this_process",
]
