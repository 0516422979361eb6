"""What the bench measures and how a figure is reported."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    """One figure a scenario reports, as its case scripts name it in their JSON."""

    key: str
    label: str
    unit: str
    higher_is_better: bool = False


PER_STEP = Metric("per_step_ms", "per step", "ms")
WALL = Metric("wall_ms", "whole run", "ms")
FIRST_PAGE = Metric("first_page_ms", "first page of 100", "ms")
WHOLE_RUN = Metric("steps_per_s", "whole run", "steps/s", higher_is_better=True)
REQUESTS = Metric("requests_per_s", "throughput", "req/s", higher_is_better=True)
P50 = Metric("p50_ms", "p50 latency", "ms")
P99 = Metric("p99_ms", "p99 latency", "ms")
PEAK_RSS = Metric("peak_rss_mb", "peak RSS", "MB")


@dataclass
class Series:
    """One system's repetitions of one metric of one scenario."""

    scenario: str
    metric: Metric
    system: str
    values: list[float] = field(default_factory=list)
    error: str | None = None
    baseline: bool = False
    note: str = ""


@dataclass
class CaseResult:
    """What one repetition of a case printed: the figures, and more for the notes."""

    figures: dict[str, float]
    info: dict[str, object]
