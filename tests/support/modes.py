"""File modes: run code under a given umask; find what under a folder is not private."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The usual umask, and the one that leaves every bit of a requested mode in.
UMASKS = pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process's umask set to `mask` (subprocesses started meanwhile inherit it)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose(root: Path, *, ignore: Collection[Path] = ()) -> dict[str, str]:
    """Each entry of `root` (itself as ".") that is not a 0700 folder or a 0600 file,
    with its mode in octal: `{}` when every one is private."""
    found: dict[str, str] = {}
    for path in [root, *root.rglob("*")]:
        if path in ignore:
            continue
        wanted = 0o700 if path.is_dir() else 0o600
        if mode(path) != wanted:
            found[str(path.relative_to(root))] = oct(mode(path))
    return found
