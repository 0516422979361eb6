"""How long the `stepline` command takes to start: `stepline --help` and `stepline runs
--help`, against `python -c pass` (the interpreter alone) measured in the same run.

    python bench/cli_startup.py [--reps 15]

Each figure is the median (and min-max) wall time of a fresh process, over `--reps`
repetitions, interleaved so that a noisy moment hits every command alike. The target
(issue 18) is `stepline --help` under 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3


def stepline_command() -> list[str]:
    """The console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "stepline"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("stepline")
    if found is None:
        sys.exit("no `stepline` command: pip install -e . first")
    return [found]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="repetitions of each command")
    args = parser.parse_args()
    stepline = stepline_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "stepline --help": [*stepline, "--help"],
        "stepline runs --help": [*stepline, "runs", "--help"],
    }
    for command in commands.values():  # warm the file cache and .pyc files
        timed(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.reps):
        for name, command in commands.items():
            times[name].append(timed(command))
    baseline = statistics.median(times["python -c pass"])
    print(f"| command | median | min-max | above python -c pass | target |  (reps {args.reps})")
    print("| --- | --- | --- | --- | --- |")
    for name, measured in times.items():
        median = statistics.median(measured)
        target = ""
        if name.startswith("stepline"):
            target = f"< {TARGET_S} s: {'met' if median < TARGET_S else 'MISSED'}"
        print(
            f"| {name} | {median:.3f} s | {min(measured):.3f}-{max(measured):.3f} s "
            f"| +{median - baseline:.3f} s | {target} |"
        )


if __name__ == "__main__":
    main()
