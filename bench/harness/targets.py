"""The targets of issue 4, checked against stepline's medians (full-size runs only)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """Bounds on stepline's median: absolute, against the baseline, against peers."""

    at_most: float | None = None
    at_least: float | None = None
    max_ratio: float | None = None
    """Cost ratio to the baseline (see report.cost_ratio) at most this."""
    beats: dict[str, float] = field(default_factory=dict)
    """Peer system -> how many times cheaper stepline must be."""

    def judge(
        self, unit: str, value: float, ratio: float | None, peers: dict[str, float]
    ) -> list[tuple[str, bool | None]]:
        """Each bound as text with whether `value` meets it (None: nothing to compare)."""
        bounds: list[tuple[str, bool | None]] = []
        if self.at_most is not None:
            bounds.append((f"<= {self.at_most:g} {unit}", value <= self.at_most))
        if self.at_least is not None:
            bounds.append((f">= {self.at_least:,g} {unit}", value >= self.at_least))
        if self.max_ratio is not None:
            met = None if ratio is None else ratio <= self.max_ratio
            bounds.append((f"<= {self.max_ratio:g}x baseline", met))
        for peer, factor in self.beats.items():
            met = None if peer not in peers else value * factor <= peers[peer]
            bounds.append((f"{factor:g}x below {peer}", met))
        return bounds


TARGETS: dict[tuple[str, str], Target] = {
    ("chain-100", "per_step_ms"): Target(
        at_most=1.0,
        max_ratio=15,
        beats={"prefect": 10, "dbos-sqlite": 2, "dbos-postgres": 2},
    ),
    ("fanout-1000", "wall_ms"): Target(at_most=2000),
    ("code-100", "per_step_ms"): Target(at_most=5, max_ratio=0.2),
    ("read-10k", "first_page_ms"): Target(at_most=20),
    ("read-10k", "steps_per_s"): Target(at_least=20_000),
    ("api-steps", "requests_per_s"): Target(at_least=500),
    ("api-steps", "p99_ms"): Target(at_most=100),
    ("memory", "peak_rss_mb"): Target(at_most=200),
}
