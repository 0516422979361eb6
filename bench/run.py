"""stepline's benchmark: `python bench/run.py [--quick] [--peers] [--only SCENARIO ...]`.

Runs the scenarios (see bench/README.md), prints one table (median and min-max over the
repetitions, cost against the baseline measured in the same run, the issue's targets) and
writes it with the run's notes to bench/results.md. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from harness import engine_scenarios, read_scenarios
from harness.loadgen import WRK_MISSING, wrk_available
from harness.model import Series
from harness.peers_venv import ensure_peers_venv
from harness.plan import BENCH, FULL, QUICK, SCENARIOS, Bench, log
from harness.report import table

RESULTS = BENCH / "results.md"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, 2 repetitions, no peers (CI smoke)"
    )
    parser.add_argument(
        "--peers", action="store_true", help="also run Prefect and DBOS (own virtualenv)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only these: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    parser.add_argument("--read-steps", type=int, help="steps of the read-back run")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the table")
    args = parser.parse_args(argv)
    if args.quick and args.peers:
        parser.error("--quick runs no peers")
    return args


def run(args: argparse.Namespace, workdir: Path) -> tuple[Bench, list[Series]]:
    sizes = QUICK if args.quick else FULL
    if args.reps:
        sizes = replace(sizes, reps=args.reps)
    if args.read_steps:
        sizes = replace(sizes, read=args.read_steps)
    bench = Bench(sizes=sizes, workdir=workdir, quick=args.quick)
    if args.peers:
        bench.peers_python = ensure_peers_venv()
    selected = set(args.only or SCENARIOS)
    series: list[Series] = []
    if "chain-100" in selected:
        series += engine_scenarios.chain(bench)
    if "fanout-1000" in selected:
        series += engine_scenarios.fanout(bench)
    if "code-100" in selected:
        series += engine_scenarios.code(bench)
    reads = bool(selected & {"read-10k", "memory"})
    api = "api-steps" in selected
    if api and not wrk_available():
        bench.notes.append(f"api-steps skipped: {WRK_MISSING}")
        api = False
    if reads or api:
        found = read_scenarios.run(bench, reads=reads, api=api)
        series += [s for s in found if s.scenario in selected]
    return bench, series


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def document(bench: Bench, rendered: str, started: datetime, loads: list[str]) -> str:
    command = "python bench/run.py " + shlex.join(sys.argv[1:])
    notes = "\n".join(f"- {note}" for note in bench.notes) or "- none"
    return (
        f"# stepline bench results\n\n"
        f"- taken: {started:%Y-%m-%d %H:%M} UTC with `{command.strip()}`\n"
        f"- machine: {machine()}\n"
        f"- load average (1, 5, 15 min) at start: {loads[0]}; at end: {loads[1]}\n"
        f"- sizes: {bench.sizes.describe()}\n"
        f"- vs baseline: how many times the baseline's cost (time ratio, or inverse "
        f"throughput ratio); below 1 is cheaper than the baseline\n\n"
        f"{rendered}\n\n## Notes (medians of what the cases also reported)\n\n{notes}\n"
    )


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started, clock = datetime.now(UTC), time.monotonic()
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="stepline-bench-") as folder:
        bench, series = run(args, Path(folder))
    loads.append(load_average())
    rendered = table(series, judge=not bench.quick)
    print(rendered, flush=True)
    args.output.write_text(document(bench, rendered, started, loads))
    log(f"done in {time.monotonic() - clock:.0f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
