"""The naive isolation baseline: a fresh Python process per code step.

    fresh_process.py --size N [--warmup-size W]

Each step runs `python -c` with the same `main` as stepline's code steps, its inputs on
stdin and its output as JSON on stdout; the chain feeds each output to the next step.
Nothing is recorded: this is the cost of the isolation alone.

Same protocol as the other case scripts: warm-up, `ready`, a line on stdin, one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any

CODE = (
    "import json, sys\n"
    "def main(inputs):\n"
    "    return {'i': inputs['i'] + 1}\n"
    "print(json.dumps(main(json.load(sys.stdin))))\n"
)


def step(inputs: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        check=True,
    )
    output: dict[str, Any] = json.loads(done.stdout)
    return output


def chain(size: int) -> None:
    value = {"i": 0}
    for _ in range(size):
        value = step(value)
    if value != {"i": size}:
        raise SystemExit(f"the chain returned {value!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--warmup-size", type=int, default=5)
    args = parser.parse_args()
    chain(args.warmup_size)
    gc.collect()  # the warm-up's garbage is not the timed run's to collect
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    chain(args.size)
    elapsed_ms = (time.perf_counter() - started) * 1000
    figures = {"per_step_ms": elapsed_ms / args.size}
    print(json.dumps({"figures": figures, "info": {"run_ms": elapsed_ms}}), flush=True)


if __name__ == "__main__":
    main()
