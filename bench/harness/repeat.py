"""Repeating a scenario's systems, interleaved: repetition 1 of each, then 2, and so on.

A system's repetition is usually a case script in a fresh process (`case`); the read
scenarios measure a fresh server per repetition instead.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.model import CaseResult, Metric, Series
from harness.plan import Bench
from harness.procs import run_case
from harness.report import number

Hook = Callable[[int], Mapping[str, float] | None]
"""Called with the repetition's index; may return more figures for that repetition."""


@dataclass
class System:
    """One contender in a scenario: how to measure one repetition of it."""

    name: str
    measure: Callable[[int], CaseResult]
    baseline: bool = False
    reports: frozenset[str] | None = None
    """The metric keys it reports (None: all); a failure is shown on these rows only."""
    infos: list[dict[str, object]] = field(default_factory=list)


def case(
    name: str,
    argv: Callable[[int], Sequence[str]],
    *,
    env: Mapping[str, str] | None = None,
    before_timing: Callable[[], None] | None = None,
    before: Hook | None = None,
    after: Hook | None = None,
    baseline: bool = False,
    reports: Sequence[Metric] | None = None,
) -> System:
    """A system measured by a case script, one fresh process per repetition.

    `argv(i)` is repetition i's command line; `before`/`after` run around it (`after` also
    when it failed), e.g. to start a server and read its memory afterwards.
    """

    def measure(rep: int) -> CaseResult:
        if before is not None:
            before(rep)
        try:
            result = run_case(argv(rep), env=env, before_timing=before_timing)
        finally:
            extra = after(rep) if after is not None else None
        result.figures.update(extra or {})
        return result

    return System(name, measure, baseline=baseline, reports=keys(reports))


def keys(metrics: Sequence[Metric] | None) -> frozenset[str] | None:
    return None if metrics is None else frozenset(m.key for m in metrics)


def repeat(
    bench: Bench, scenario: str, metrics: Sequence[Metric], systems: Sequence[System]
) -> list[Series]:
    """Every system `reps` times; a failure ends that system's repetitions and is shown in
    its rows. Series that got no figure and no error (a metric a system does not have) are
    left out."""
    series = {
        (s.name, m.key): Series(scenario, m, s.name, baseline=s.baseline)
        for s in systems
        for m in metrics
        if s.reports is None or m.key in s.reports
    }
    failed: dict[str, str] = {}
    for rep in range(bench.sizes.reps):
        for system in systems:
            if system.name in failed:
                continue
            bench.say(f"{scenario}: {system.name} repetition {rep + 1}/{bench.sizes.reps}")
            try:
                result = system.measure(rep)
            except Exception as exc:  # shown in the table; the other systems go on
                failed[system.name] = f"{type(exc).__name__}: {exc}"
                bench.say(f"{scenario}: {system.name} failed: {exc}")
                continue
            system.infos.append(dict(result.info))
            for metric in metrics:
                if metric.key in result.figures:
                    value = float(result.figures[metric.key])
                    series[(system.name, metric.key)].values.append(value)
    for system in systems:
        note_infos(bench, scenario, system.name, system.infos)
    kept = []
    for (name, _), one in series.items():
        one.error = failed.get(name)
        if one.values or one.error:
            kept.append(one)
    return kept


def note_infos(bench: Bench, scenario: str, system: str, infos: list[dict[str, object]]) -> None:
    """Medians of the numeric extras the cases reported, for the notes under the table."""
    keys = sorted({k for info in infos for k, v in info.items() if _number(v)})
    parts = []
    for key in keys:
        values = [_as_float(info[key]) for info in infos if _number(info.get(key))]
        parts.append(f"{key} {number(statistics.median(values))}")
    if parts:
        bench.notes.append(f"{scenario} / {system}: " + ", ".join(parts))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)
