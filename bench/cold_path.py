"""What a step costs the first time a process runs a workflow, against a warm process.

    python bench/cold_path.py [--size 100] [--reps 7]

The workflow is bench's chain: `--size` `reshape` nodes in a row, each rendering
`{{ nodes.s<i-1>.output.i + 1 }}` from the previous step's output. Each repetition runs it
two ways, interleaved so that a noisy moment hits both alike:

- **cold**: `stepline run chain.json` in a fresh process, as a user runs it (live progress
  on stderr), on a home where another process ran it before (as a user's `~/.stepline`
  is); the steps are read back afterwards with `stepline steps RUN --json`. That earlier
  run, on a new home, is the row "cold, new home": its database and WAL files grow as
  it writes, which costs more than process start-up does;
- **warm**: a fresh process that makes one run of the same file first (imports, caches,
  compiled templates, SQLite pages), then a second one, timed; both go through
  `stepline.cli.local.run_here` with the same live progress, as the command does.

Per step = from the first step's `started_at` to the last step's `completed_at`, in the
step records, divided by the number of steps: the engine's time, without process start-up,
imports, opening the database or printing the result. The table gives each case's median
and range, and the cold figure as a ratio of the warm one from the same bench run (issue
22's target: within 1.5x). The whole `stepline run` process's wall time is in the notes.
A second table gives what one chain template costs the first time a process meets it
(validating and rendering it) and warm, through the direct evaluator and through Jinja.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.5


def stepline_command() -> list[str]:
    """The console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "stepline"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("stepline")
    if found is None:
        sys.exit("no `stepline` command: pip install -e . first")
    return [found]


def write_chain(size: int, folder: Path) -> Path:
    sys.path.insert(0, str(HERE / "cases"))
    import stepline_workflows

    path = folder / "chain.json"
    path.write_text(json.dumps(stepline_workflows.chain(size)))
    return path


def per_step_ms(steps: list[dict[str, Any]], size: int) -> float:
    """From the first step's start to the last step's end, per step (ms)."""
    if len(steps) != size or any(step["status"] != "completed" for step in steps):
        raise SystemExit(f"expected {size} completed steps, got {len(steps)}")
    first = min(datetime.fromisoformat(step["started_at"]) for step in steps)
    last = max(datetime.fromisoformat(step["completed_at"]) for step in steps)
    return (last - first).total_seconds() * 1000 / size


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ, STEPLINE_HOME=str(home))
    for name in ("STEPLINE_DATABASE_URL", "STEPLINE_CONFIG", "STEPLINE_SERVER"):
        env.pop(name, None)
    return env


def cold(chain: Path, size: int) -> tuple[float, float, float]:
    """Per step ms of `stepline run` in a fresh process on a new home (the first run ever),
    then in another fresh process on that home (as a user runs it again), and the second
    process's whole wall time in ms."""
    stepline = stepline_command()
    with tempfile.TemporaryDirectory(prefix="stepline-cold-") as home:
        env = environment(Path(home))
        first = _run_and_read(stepline, chain, size, env)[0]
        again, wall_ms = _run_and_read(stepline, chain, size, env)
        return first, again, wall_ms


def _run_and_read(
    stepline: list[str], chain: Path, size: int, env: dict[str, str]
) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run([*stepline, "run", str(chain)], env=env, capture_output=True, text=True)
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"stepline run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    run_id = done.stderr.split(", run ", 1)[1].split()[0]
    read = subprocess.run(
        [*stepline, "steps", run_id, "--json"], env=env, capture_output=True, text=True, check=True
    )
    return per_step_ms(json.loads(read.stdout), size), wall_ms


def warm(chain: Path, size: int) -> float:
    """Per step ms of the second run of `chain` in one fresh process."""
    with tempfile.TemporaryDirectory(prefix="stepline-warm-") as home:
        done = subprocess.run(
            [sys.executable, __file__, "--warm-child", str(chain), "--size", str(size)],
            env=environment(Path(home)),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"the warm process failed:\n{done.stderr[-2000:]}")
        return float(json.loads(done.stdout.splitlines()[-1])["per_step_ms"])


def warm_child(chain: Path, size: int) -> None:
    """Run `chain` twice here, as `stepline run` does; print the second run's figure."""
    from stepline.cli import local
    from stepline.cli.console import err
    from stepline.cli.inputs import load_file
    from stepline.cli.progress import LiveProgress

    definition = load_file(chain)
    figures = []
    for _ in range(2):
        finished = local.run_async(
            lambda: local.run_here(definition, {}, LiveProgress(err()), lambda _: None)
        )
        figures.append(per_step_ms([s.model_dump(mode="json") for s in finished.steps], size))
    print(json.dumps({"per_step_ms": figures[-1], "first_ms": figures[0]}))


def template_costs(size: int) -> dict[str, tuple[float, float]]:
    """(first time, warm) microseconds of one chain template in this process, through the
    direct evaluator and through Jinja alone: the first time is validating it (its
    references) and rendering it once in a new `Templates`, as a fresh process does."""
    from stepline.spec.templates import Templates

    state = {"status": "completed", "error": None}
    nodes = {f"s{i}": {"output": {"i": i}, **state} for i in range(size)}
    scope = {"inputs": {}, "nodes": nodes, "run": {"id": "run"}}
    sources = [{"i": f"{{{{ nodes.s{i}.output.i + 1 }}}}"} for i in range(size)]
    costs = {}
    for name, direct in (("Jinja compiles each template", False), ("direct evaluator", True)):
        try:
            templates, firsts = Templates(direct=direct), []
        except TypeError:  # a source tree from before the direct evaluator
            if direct:
                continue
            templates, firsts = Templates(), []
        for source in sources:
            started = time.perf_counter()
            templates.references(source)
            templates.render(source, scope)
            firsts.append(time.perf_counter() - started)
        repeats = 20 * size
        started = time.perf_counter()
        for _ in range(20):
            for source in sources:
                templates.render(source, scope)
        warm_s = (time.perf_counter() - started) / repeats
        costs[name] = (statistics.median(firsts) * 1e6, warm_s * 1e6)
    return costs


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="steps in the chain")
    parser.add_argument("--reps", type=int, default=11, help="repetitions of each case")
    parser.add_argument("--warm-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm_child is not None:
        warm_child(args.warm_child, args.size)
        return
    with tempfile.TemporaryDirectory(prefix="stepline-chain-") as folder:
        chain = write_chain(args.size, Path(folder))
        cold(chain, args.size)  # warm the file cache and .pyc files; not counted
        firsts: list[float] = []
        colds: list[float] = []
        walls: list[float] = []
        warms: list[float] = []
        load = os.getloadavg()
        for rep in range(args.reps):
            print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
            first, per_step, wall = cold(chain, args.size)
            firsts.append(first)
            colds.append(per_step)
            walls.append(wall)
            warms.append(warm(chain, args.size))
    costs = template_costs(args.size)
    baseline = statistics.median(warms)
    ratio = statistics.median(colds) / baseline
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(
        f"chain of {args.size} reshape steps, {args.reps} repetitions, load average "
        f"{load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    print()
    print("| case | per step median (ms) | min-max | vs warm | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| warm (second run in one process) | {baseline:.3f} | {spread(warms)} | baseline | |")
    print(
        f"| cold (`stepline run`, fresh process) | {statistics.median(colds):.3f} "
        f"| {spread(colds)} | {ratio:.2f}x | <= {TARGET_RATIO}x: {verdict} |"
    )
    print(
        f"| cold, new home (the first run ever) | {statistics.median(firsts):.3f} "
        f"| {spread(firsts)} | {statistics.median(firsts) / baseline:.2f}x | |"
    )
    print()
    print(
        f"Ratio of the fastest repetitions (less sensitive to other processes taking the "
        f"cores): cold {min(colds) / min(warms):.2f}x warm, new home "
        f"{min(firsts) / min(warms):.2f}x. The whole `stepline run` process: "
        f"{statistics.median(walls):.0f} ms median ({min(walls):.0f}-{max(walls):.0f})."
    )
    print()
    print("One chain template in this process (median over the chain's templates):")
    print()
    print("| templates | first time: validate + render (us) | warm render (us) |")
    print("| --- | --- | --- |")
    for name, (first_us, warm_us) in costs.items():
        print(f"| {name} | {first_us:.0f} | {warm_us:.1f} |")


if __name__ == "__main__":
    main()
