"""The results table: one row per scenario, metric and system, in markdown."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from harness.model import Series
from harness.plan import SCENARIOS
from harness.targets import TARGETS

HEADER = ("scenario", "metric", "system", "median", "min-max", "vs baseline", "target")


def cost_ratio(series: Series, baseline: Series | None) -> float | None:
    """How many times the baseline's cost: a time ratio, or the inverse of a rate ratio."""
    if baseline is None or not baseline.values or not series.values:
        return None
    mine, theirs = statistics.median(series.values), statistics.median(baseline.values)
    if series.metric.higher_is_better:
        return theirs / mine if mine else None
    return mine / theirs if theirs else None


def number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(all_series: Sequence[Series], *, judge: bool) -> str:
    """The markdown table, followed by a numbered list of the failures it mentions."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    failures: list[str] = []
    for group in _groups(all_series):
        baseline = next((s for s in group if s.baseline), None)
        peers = {s.system: statistics.median(s.values) for s in group if s.values}
        for one in group:
            lines.append("| " + " | ".join(_cells(one, baseline, peers, judge, failures)) + " |")
    if failures:
        lines.append("")
        lines += [f"[{i}] {text}" for i, text in enumerate(failures, 1)]
    return "\n".join(lines)


def _cells(
    one: Series,
    baseline: Series | None,
    peers: dict[str, float],
    judge: bool,
    failures: list[str],
) -> list[str]:
    unit = one.metric.unit
    head = [one.scenario, f"{one.metric.label} ({unit})", one.system]
    if not one.values:
        return [*head, f"failed [{_footnote(failures, one)}]", "-", "-", "-"]
    median = statistics.median(one.values)
    spread = f"{number(min(one.values))}-{number(max(one.values))}"
    if one.error:
        spread += f" (then failed [{_footnote(failures, one)}])"
    ratio = cost_ratio(one, baseline)
    if one.baseline:
        versus = "baseline"
    else:
        versus = "-" if ratio is None else f"{ratio:.3g}x"
    return [*head, number(median), spread, versus, _verdict(one, median, ratio, peers, judge)]


def _footnote(failures: list[str], one: Series) -> int:
    """The number of the footnote holding the series' error (one per system and error)."""
    text = f"{one.system}: {(one.error or '').strip()}"
    if text not in failures:
        failures.append(text)
    return failures.index(text) + 1


def _verdict(
    one: Series, median: float, ratio: float | None, peers: dict[str, float], judge: bool
) -> str:
    target = TARGETS.get((one.scenario, one.metric.key))
    if target is None or one.system != "stepline":
        return ""
    bounds = target.judge(one.metric.unit, median, ratio, peers)
    if not judge:
        return ", ".join(text for text, _ in bounds)
    parts = []
    missed = [text for text, met in bounds if met is False]
    held = [text for text, met in bounds if met is True]
    if missed:
        parts.append("MISSED " + ", ".join(missed))
    if held:
        parts.append("met " + ", ".join(held))
    return "; ".join(parts)


def _groups(all_series: Sequence[Series]) -> list[list[Series]]:
    """Series grouped by (scenario, metric) in the scenarios' order; baseline, stepline first."""
    groups: dict[tuple[str, str], list[Series]] = {}
    for one in all_series:
        groups.setdefault((one.scenario, one.metric.key), []).append(one)
    order = {name: i for i, name in enumerate(SCENARIOS)}
    ordered = sorted(groups.items(), key=lambda item: order.get(item[0][0], len(order)))
    return [sorted(group, key=_system_rank) for _, group in ordered]


def _system_rank(one: Series) -> tuple[int, str]:
    if one.baseline:
        return (0, one.system)
    return (1 if one.system == "stepline" else 2, one.system)
