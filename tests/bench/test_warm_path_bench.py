"""Smoke test of `bench/warm_path.py`: it runs, checks its chain's output, and prints every
figure. Timings are never asserted; the commits per step are (a pure chain commits each
step once, plus the run's own few), since that is what the warm path stands on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WARM_PATH = Path(__file__).resolve().parents[2] / "bench" / "warm_path.py"


def test_the_warm_path_bench_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(WARM_PATH), "--runs", "2", "--warmup", "1", "--size", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("wall_ms_median", "wall_ms_min", "cpu_ms_median", "cpu_ms_min"):
        assert figures[name] > 0, figures
    # 20 steps, one commit each, and the run's own (queued, claimed, pending steps, finished).
    assert 1.0 <= figures["commits_per_step"] <= 1.3, figures
