"""The process-heavy modules named for pytest-xdist's scheduling are real modules, so that a
renamed one does not silently start running beside the others."""

from __future__ import annotations

from pathlib import Path

from support.xdist_groups import PROCESS_HEAVY_MODULES, ModuleScheduling

ROOT = Path(__file__).resolve().parents[1]


def test_every_process_heavy_module_exists() -> None:
    assert all((ROOT / module).is_file() for module in PROCESS_HEAVY_MODULES)


def test_the_process_heavy_modules_are_one_unit_and_others_one_per_module() -> None:
    split = ModuleScheduling.__new__(ModuleScheduling)._split_scope
    fleet, fuzz = (f"{m}::test_x[postgres]" for m in PROCESS_HEAVY_MODULES[:2])
    assert split(fleet) == split(fuzz) == "process-heavy"
    assert split("tests/cli/test_cli.py::test_a") == split("tests/cli/test_cli.py::test_b")
    assert split("tests/cli/test_cli.py::Case::test_a") == "tests/cli/test_cli.py"
    assert split("tests/cli/test_cli.py::test_a") != split("tests/cli/test_help.py::test_a")
