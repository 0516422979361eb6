"""What a secret's name and value may be: one rule for the API, the CLI and templates."""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_NAME_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024
"""A secret is a key or a token, not a document; the bound keeps every record small."""

_NAME = re.compile(NAME_PATTERN)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a secret, or None when it can."""
    if not name:
        return "a secret's name must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a secret's name is at most {MAX_NAME_LENGTH} characters"
    if not _NAME.match(name):
        return (
            f"{name!r} is not a secret name: use letters, digits and underscores, "
            "not starting with a digit (e.g. API_KEY)"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why `value` cannot be stored as a secret, or None when it can."""
    if not value:
        return "a secret's value must not be empty"
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        return f"a secret's value is at most {MAX_VALUE_BYTES} bytes (got {size})"
    return None


def check_name(name: str) -> str:
    """`name`, or ValueError saying why it cannot name a secret."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def check_value(value: str) -> str:
    """`value`, or ValueError saying why it cannot be stored."""
    problem = value_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value
