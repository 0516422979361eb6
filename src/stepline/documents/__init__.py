"""Documents stepline takes in: their limits, and the checks that hold them to them."""

from stepline.documents.check import (
    DocumentError,
    check_definition,
    check_document,
    check_inputs,
    check_output,
)
from stepline.documents.limits import DocumentLimits

__all__ = [
    "DocumentError",
    "DocumentLimits",
    "check_definition",
    "check_document",
    "check_inputs",
    "check_output",
]
