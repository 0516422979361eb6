"""What the pool and the fork server agree on.

Every frame, both ways, is a 4-byte big-endian length followed by that many bytes of JSON
(and, for a `done` event, its payload right after):

- request ``{"op": "run", "id", "code", "filename", "inputs", "memory_mb", "timeout_s",
  "network"}``: hand the job to a spare child (forked ahead of need, with or without the
  network as the job asks), which runs ``main(inputs)``;
- request ``{"op": "kill", "id"}``: kill that job's processes now (its task was cancelled);
- event ``{"event": "ready", "pid"}``: sent once, when the preloaded modules are imported;
- event ``{"event": "started", "id", "pid"}``: a child has the job (so a job whose server
  dies before this event never ran, and may be sent again);
- event ``{"event": "done", "id", "returncode", "timed_out", "cancelled", "sizes",
  "dropped"}``: the child is done or gone; the header is followed by ``sizes[0]`` bytes of
  result JSON, ``sizes[1]`` of stdout and ``sizes[2]`` of stderr (``dropped`` counts the
  stdout and stderr bytes left out past the cap), or it carries ``"error"`` if no child
  could be started.

The server's own configuration comes as one JSON argument on its command line (see
`ServerOptions`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FRAME = struct.Struct(">I")
"""The length prefix of every frame, both ways."""

STREAM_CAP = 64 * 1024
"""How many bytes of a job's stdout, and of its stderr, are sent back; the rest is counted."""


@dataclass(frozen=True)
class ServerOptions:
    """How the fork server confines its children; one JSON object on its command line."""

    namespaces: bool = False
    """Each job gets its own user, PID, mount, network and IPC namespaces (the server runs
    inside bubblewrap, which gave it the rights to make them); else process isolation only."""
    tmp_mb: int = 64
    """Size of each job's private /tmp (namespaces only)."""
    max_processes: int = 64
    """How many processes one job may have at once (namespaces only)."""
    egress: bool = False
    """The egress proxy's socket is in the sandbox (the operator allows some network)."""

    def to_json(self) -> str:
        import json

        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> ServerOptions:
        import json

        return cls(**json.loads(text))
