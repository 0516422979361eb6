"""How pytest-xdist shares the suite out (pyproject: `-n 2 --dist loadscope`).

A test module goes to one worker as a whole, so that its module-scoped fixtures (servers,
seeded databases) start once rather than on each worker. The process-heavy modules below
go to one worker together, one test after another. (xdist's own `--dist loadgroup` marks
cannot do it: with pytest 9 the group never reaches the test's id, which it relies on.)
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

# Modules whose tests each start a crowd of processes (a worker fleet, a private
# PostgreSQL, the benchmarks, the fuzzer and its server) and lean on leases, timeouts or
# timings: two of them side by side would starve each other, so they take turns while the
# other worker runs the lighter tests. They are collected first (tests/conftest.py), so
# that they start at once rather than being the last thing a worker runs.
PROCESS_HEAVY_MODULES = (
    "tests/worker/test_fleet.py",
    "tests/fuzz/test_api_fuzz.py",
    "tests/bench/test_fleet_bench.py",
    "tests/bench/test_bench_quick.py",
)


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def is_process_heavy(item: pytest.Item) -> bool:
    return module_of(item.nodeid) in PROCESS_HEAVY_MODULES


class ModuleScheduling(LoadScopeScheduling):
    """`--dist loadscope` by module (not class), the process-heavy modules as one unit."""

    def _split_scope(self, nodeid: str) -> str:
        module = module_of(nodeid)
        return "process-heavy" if module in PROCESS_HEAVY_MODULES else module
