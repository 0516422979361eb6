"""How large and how deep a document stepline takes may be, and the settings that say so.

Every JSON value stepline stores comes through one of these doors: a workflow definition,
a run's inputs, a reviewer's output (the API, the CLI), or what a node kind returns (the
engine). Each is bounded in nesting depth and in size, so that nothing stored can break
a later read: the readers behind the store (pydantic's JSON parser, 200 levels; its
serializer, 254) and every client get documents well inside what they handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stepline.settings import Settings

DEFAULT_MAX_DEPTH = 64
"""Levels of nested arrays and objects a document may have (`[[1]]` has 2)."""
MAX_DEPTH_CEILING = 128
"""The most `STEPLINE_MAX_DOCUMENT_DEPTH` may allow. Stored records wrap documents in a
few levels of their own (a review's output inside `step_metadata.review`), and API
responses in a few more: this leaves them far below the 200 levels the store reads back."""
MAX_INT_DIGITS = 4300
"""Integers are kept exactly up to this many digits: Python's own bound on converting
between integers and text (`sys.get_int_max_str_digits()`), which its JSON reader, the
store's reader and most clients share; a longer one could be stored but not read back."""

DEFAULT_MAX_DEFINITION_BYTES = 1024 * 1024
DEFAULT_MAX_INPUTS_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024

DEPTH_SETTING = "STEPLINE_MAX_DOCUMENT_DEPTH"
DEFINITION_SETTING = "STEPLINE_MAX_DEFINITION_BYTES"
INPUTS_SETTING = "STEPLINE_MAX_INPUTS_BYTES"
OUTPUT_SETTING = "STEPLINE_MAX_OUTPUT_BYTES"


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """The bounds of each kind of document (sizes are bytes of compact UTF-8 JSON)."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_definition_bytes: int = DEFAULT_MAX_DEFINITION_BYTES
    max_inputs_bytes: int = DEFAULT_MAX_INPUTS_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """One step's output (also its recorded inputs, and a reviewer's edited output)."""

    @classmethod
    def of(cls, settings: Settings) -> DocumentLimits:
        return cls(
            max_depth=settings.max_document_depth,
            max_definition_bytes=settings.max_definition_bytes,
            max_inputs_bytes=settings.max_inputs_bytes,
            max_output_bytes=settings.max_output_bytes,
        )
