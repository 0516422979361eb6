"""Text every database stores as it is: for the messages stepline writes about errors."""

from __future__ import annotations

MAX_MESSAGE = 2000
"""Characters of an exception's message kept (a driver's can be long)."""


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates escaped (PostgreSQL stores neither), not dropped."""
    text = text.replace("\x00", "\\u0000")
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe_error(exc: BaseException) -> str:
    """`Type: message`, storable and cut to MAX_MESSAGE characters."""
    message = storable_text(f"{type(exc).__name__}: {exc}")
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."
