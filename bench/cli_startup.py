"""How long the `stepline` command takes to start: `stepline --help` and `stepline runs
--help`, against `python -c pass` (the interpreter alone) measured in the same run.

    python bench/cli_startup.py [--reps 15]

Each figure is the median (and min-max) wall time of a fresh process, over `--reps`
repetitions, interleaved so that a noisy moment hits every command alike, and the median
CPU time (user + system) of the process, which a busy machine inflates less. The target
(issue 18) is `stepline --help` under 0.3 s of wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def timed(command: list[str]) -> tuple[float, float]:
    """The wall time and the CPU time of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


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
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.reps):
        for name, command in commands.items():
            wall, cpu = timed(command)
            walls[name].append(wall)
            cpus[name].append(cpu)
    baseline = statistics.median(walls["python -c pass"])
    print(f"{args.reps} repetitions, load average {os.getloadavg()[0]:.1f}")
    print("| command | wall median | wall min-max | above python -c pass | CPU median | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, measured in walls.items():
        median = statistics.median(measured)
        target = ""
        if name.startswith("stepline"):
            target = f"< {TARGET_S} s: {'met' if median < TARGET_S else 'MISSED'}"
        print(
            f"| {name} | {median:.3f} s | {min(measured):.3f}-{max(measured):.3f} s "
            f"| +{median - baseline:.3f} s | {statistics.median(cpus[name]):.3f} s | {target} |"
        )


if __name__ == "__main__":
    main()
