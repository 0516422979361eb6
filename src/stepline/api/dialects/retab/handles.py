"""A step's `handle_inputs` and `handle_outputs`, as Retab shows them, for every kind.

The kinds that read or make documents (extract, parse, split, edit, merge_pdf,
knowledge_retrieval) record their handles themselves, and so do classifier and
conditional their outputs (the chosen handle); those are served as recorded. Where a
step's record holds none, they are derived here, a pure view of the record
(docs/dialects/retab.md, "Handles"):

- inputs: `input-file-0` for the `input_document`, else `input-json-0` holding the
  resolved `inputs`; none when the step has neither (a pending step).
- outputs: `output-file-<name>` for each of `split_documents`, else `output-file-0` for
  the `output_document`, else `output-json-0` holding the `outputs`; none when the step
  has no output.

Seed 004's JSON handle's `data` is an object: a value that is not one (a list, a string,
a number) is given there as `{"value": <it>}`. Today's `data` is any JSON value, given as
it is; today's file document is `{id, filename, mime_type}` (seed 004's:
`{file_id, filename, mime_type}`).
"""

from __future__ import annotations

from typing import Any

from stepline.records import INPUT_JSON_HANDLE, OUTPUT_JSON_HANDLE, StepRecord

INPUT_FILE = "input-file-0"
OUTPUT_FILE = "output-file-0"
UNKNOWN_MIME_TYPE = "application/octet-stream"


def as_object(value: Any) -> dict[str, Any]:
    """The value as the JSON object seed 004's `data` and `output` are."""
    return value if isinstance(value, dict) else {"value": value}


def _file(document: dict[str, Any]) -> dict[str, Any]:
    return {"type": "file", "document": document}


def _json(data: Any) -> dict[str, Any]:
    return {"type": "json", "data": data}


def _inputs(step: StepRecord) -> dict[str, Any]:
    if step.handle_inputs is not None:
        return step.handle_inputs
    if step.input_document is not None:
        return {INPUT_FILE: _file(step.input_document)}
    if step.inputs is not None:
        return {INPUT_JSON_HANDLE: _json(step.inputs)}
    return {}


def _outputs(step: StepRecord) -> dict[str, Any]:
    if step.handle_outputs is not None:
        return step.handle_outputs
    if step.split_documents:
        return {
            f"output-file-{name}": _file(document)
            for name, document in step.split_documents.items()
        }
    if step.output_document is not None:
        return {OUTPUT_FILE: _file(step.output_document)}
    if step.outputs is not None:
        return {OUTPUT_JSON_HANDLE: _json(step.outputs)}
    return {}


def _seed(handles: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {**handle, "data": as_object(handle["data"])}
        if isinstance(handle, dict) and handle.get("type") == "json" and "data" in handle
        else handle
        for name, handle in handles.items()
    }


def seed_handle_inputs(step: StepRecord) -> dict[str, Any]:
    """What the step received, by input handle, as seed 004 shows it."""
    return _seed(_inputs(step))


def seed_handle_outputs(step: StepRecord) -> dict[str, Any]:
    """What the step produced, by output handle, as seed 004 shows it."""
    return _seed(_outputs(step))


def file_ref(document: dict[str, Any]) -> dict[str, str]:
    """Today's FileRef (every key a string) of a stepline document reference."""
    return {
        "id": str(document.get("file_id") or document.get("id") or ""),
        "filename": str(document.get("filename") or ""),
        "mime_type": str(document.get("mime_type") or UNKNOWN_MIME_TYPE),
    }


def _today(handles: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, handle in handles.items():
        document = handle.get("document") if isinstance(handle, dict) else None
        if isinstance(document, dict):
            shown[name] = {"type": "file", "document": file_ref(document), "data": None}
        else:
            data = handle.get("data") if isinstance(handle, dict) else handle
            shown[name] = {"type": "json", "document": None, "data": data}
    return shown


def today_handle_inputs(step: StepRecord) -> dict[str, Any]:
    """What the step received, by input handle, as today's SDK models it."""
    return _today(_inputs(step))


def today_handle_outputs(step: StepRecord) -> dict[str, Any]:
    """What the step produced, by output handle, as today's SDK models it."""
    return _today(_outputs(step))
