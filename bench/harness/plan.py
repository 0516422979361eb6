"""What a bench run does: its scenarios, their sizes, and where its files and tools are."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
"""The bench/ folder."""

SCENARIOS = ("chain-100", "fanout-1000", "code-100", "read-10k", "api-steps", "memory")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is and how often it is repeated."""

    chain: int = 100
    fanout: int = 1000
    code: int = 100
    read: int = 10_000
    api_seconds: float = 10.0
    api_clients: int = 16
    reps: int = 5
    warmup: int = 100
    """Steps of the warm-up run each process makes before its timed run (at most)."""

    def describe(self) -> str:
        return (
            f"chain {self.chain} steps, fan-out {self.fanout} + 1 join, code {self.code} "
            f"steps, read-back run {self.read:,} steps, api-steps {self.api_clients} clients "
            f"for {self.api_seconds:g} s; {self.reps} repetition{'s' if self.reps != 1 else ''}"
        )


FULL = Sizes()
QUICK = Sizes(chain=20, fanout=50, code=10, read=300, api_seconds=1.0, reps=2, warmup=5)


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """One run of the bench: its sizes, the peers' Python (None without --peers), notes."""

    sizes: Sizes
    workdir: Path
    quick: bool = False
    peers_python: Path | None = None
    python: str = sys.executable
    notes: list[str] = field(default_factory=list)
    say: Callable[[str], None] = log

    def script(self, relative: str) -> str:
        return str(BENCH / relative)

    def warmup(self, size: int) -> int:
        return min(size, self.sizes.warmup)
