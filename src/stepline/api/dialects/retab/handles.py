"""A step's `handle_inputs` and `handle_outputs`, as Retab shows them, for every kind.

The kinds that read or make documents (extract, parse, split, edit, merge_pdf, classifier,
knowledge_retrieval, conditional) record their handles themselves, and those are served as
recorded. For a step whose record holds none, they are derived here, a pure view of the
record (docs/dialects/retab.md, "Handles"):

- inputs: `input-file-0` for the `input_document`, else `input-json-0` holding the
  resolved `inputs`; none when the step has neither (a pending step).
- outputs: `output-file-<name>` for each of `split_documents`, else `output-file-0` for
  the `output_document`; and `output-json-0` holding the `outputs` when there is no
  document; none when the step has no output.

A JSON handle's `data` is an object in Retab's models: a value that is not one (a list, a
string, a number) is given as `{"value": <it>}`.
"""

from __future__ import annotations

from typing import Any

from stepline.records import StepRecord

INPUT_FILE = "input-file-0"
INPUT_JSON = "input-json-0"
OUTPUT_FILE = "output-file-0"
OUTPUT_JSON = "output-json-0"


def as_object(value: Any) -> dict[str, Any]:
    """The value as the JSON object Retab's `data` and `output` are."""
    return value if isinstance(value, dict) else {"value": value}


def file_handle(document: dict[str, Any]) -> dict[str, Any]:
    return {"type": "file", "document": document}


def json_handle(data: Any) -> dict[str, Any]:
    return {"type": "json", "data": as_object(data)}


def handle_inputs(step: StepRecord) -> dict[str, Any]:
    """What the step received, by input handle."""
    if step.handle_inputs is not None:
        return step.handle_inputs
    if step.input_document is not None:
        return {INPUT_FILE: file_handle(step.input_document)}
    if step.inputs is not None:
        return {INPUT_JSON: json_handle(step.inputs)}
    return {}


def handle_outputs(step: StepRecord) -> dict[str, Any]:
    """What the step produced, by output handle."""
    if step.handle_outputs is not None:
        return step.handle_outputs
    if step.split_documents:
        return {
            f"output-file-{name}": file_handle(document)
            for name, document in step.split_documents.items()
        }
    if step.output_document is not None:
        return {OUTPUT_FILE: file_handle(step.output_document)}
    if step.outputs is not None:
        return {OUTPUT_JSON: json_handle(step.outputs)}
    return {}


def today_handles(handles: dict[str, Any]) -> dict[str, Any]:
    """Handles as today's SDK models them: a file's document is `{id, filename, mime_type}`
    (seed 004's is `{file_id, filename, mime_type}`); a JSON handle's data is an object."""
    shown: dict[str, Any] = {}
    for name, handle in handles.items():
        if not isinstance(handle, dict):
            shown[name] = {"type": "json", "document": None, "data": as_object(handle)}
            continue
        document = handle.get("document")
        if isinstance(document, dict):
            document = {
                "id": str(document.get("file_id") or document.get("id") or ""),
                "filename": document.get("filename"),
                "mime_type": document.get("mime_type"),
            }
            shown[name] = {"type": "file", "document": document, "data": None}
        else:
            data = handle.get("data")
            shown[name] = {
                "type": "json",
                "document": None,
                "data": None if data is None else as_object(data),
            }
    return shown
