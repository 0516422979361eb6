"""The store's shape: a holder of repositories, no import loop among its modules, and the
driver's constraint error named in one place only (`stepline.store.errors`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import stepline.store
from stepline.store import Store
from stepline.store.repository import Repository

STORE = Path(stepline.store.__file__).parent
MODULES = sorted(
    "stepline.store." + ".".join(path.relative_to(STORE).with_suffix("").parts)
    for path in STORE.rglob("*.py")
    if "migrations" not in path.parts and path.name != "__init__.py"
)


def test_the_store_holds_repositories_and_no_verbs() -> None:
    verbs = sorted(name for name in vars(Store) if not name.startswith("_"))
    assert verbs == ["close", "connect", "upgrade"]


async def test_every_concept_has_its_repository(store: Store) -> None:
    concepts = {name for name, value in vars(store).items() if isinstance(value, Repository)}
    assert concepts == {
        "organizations",
        "keys",
        "workflows",
        "runs",
        "steps",
        "events",
        "secrets",
        "files",
        "collections",
        "workers",
    }
    # One database and one writer under them all.
    assert {id(getattr(store, name).writer) for name in concepts} == {id(store.writer)}


def test_each_store_module_imports_first_without_a_loop() -> None:
    # Each module is imported first in a fresh set of stepline modules: a loop among them
    # fails here with a partially initialized module, whichever module it starts from.
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('stepline')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *MODULES], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_only_errors_names_the_drivers_constraint_error() -> None:
    naming = [
        path.relative_to(STORE).as_posix()
        for path in STORE.rglob("*.py")
        if "IntegrityError" in path.read_text() and "migrations" not in path.parts
    ]
    # prepared.py wraps a driver error into SQLAlchemy's (IntegrityError among them), below
    # the boundary, as SQLAlchemy's own execution would.
    assert sorted(naming) == ["errors.py", "prepared.py"]
