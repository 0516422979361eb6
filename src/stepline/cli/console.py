"""Where the CLI writes: results on stdout, progress and messages on stderr.

The rich consoles are made on first use, so that commands that print nothing rich (and
`--help`) never import rich.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@cache
def out() -> Console:
    """stdout: what a command produces."""
    from rich.console import Console

    return Console(highlight=False)


@cache
def err() -> Console:
    """stderr: progress, notes and errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def print_json(document: Any) -> None:
    """One JSON document on stdout, never wrapped or marked up."""
    out().print(dumps(document), markup=False, soft_wrap=True)


def say(text: str) -> None:
    """A plain line on stdout (no markup, never wrapped)."""
    out().print(text, markup=False, soft_wrap=True)


def note(text: str) -> None:
    """A plain line on stderr."""
    err().print(text, markup=False, soft_wrap=True)
