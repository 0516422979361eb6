"""Files through both faces of the SDK, against a real `stepline serve`: upload (a path or
bytes), list (pages), get, download (bytes, or to a path), delete; a run's inputs refer to
a file as `file.reference()`."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepline import Client
from stepline.sdk import File, NotFoundError, ValidationError

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def test_upload_list_get_download_delete(sdk: Client, tmp_path: Path) -> None:
    source = tmp_path / "invoice.pdf"
    source.write_bytes(PDF)
    from_path = sdk.files.upload(source)
    assert isinstance(from_path, File)
    assert from_path.filename == "invoice.pdf" and from_path.mime_type == "application/pdf"
    assert from_path.size == len(PDF)
    from_bytes = sdk.files.upload(b"plain words", filename="notes.pdf")
    assert from_bytes.filename == "notes.pdf" and from_bytes.mime_type != "application/pdf"

    assert sdk.files.get(from_path.id) == from_path
    assert [f.id for f in sdk.files.list(page_size=1)] == [from_bytes.id, from_path.id]

    assert sdk.files.download(from_path.id) == PDF
    target = tmp_path / "out.pdf"
    assert sdk.files.download(from_path.id, to=target) == PDF
    assert target.read_bytes() == PDF

    sdk.files.delete(from_path.id)
    with pytest.raises(NotFoundError):
        sdk.files.get(from_path.id)
    with pytest.raises(NotFoundError):
        sdk.files.download(from_path.id)
    with pytest.raises(NotFoundError):
        sdk.files.delete(from_path.id)
    assert [f.id for f in sdk.files.list()] == [from_bytes.id]


def test_bytes_need_a_filename(sdk: Client) -> None:
    with pytest.raises(ValueError, match="filename"):
        sdk.files.upload(b"x")


def test_a_run_refers_to_a_file(sdk: Client) -> None:
    workflow = sdk.workflows.create(
        {
            "name": "takes-a-file",
            "inputs": {"type": "object", "properties": {"doc": {"type": "object"}}},
            "nodes": [{"id": "echo", "type": "reshape", "config": {"output": "{{ inputs.doc }}"}}],
        }
    )
    made = sdk.files.upload(b"hello", filename="hello.txt")
    run = sdk.runs.create(workflow.id, {"doc": made.reference()})
    assert run.inputs == {"doc": {"file_id": str(made.id)}}
    sdk.files.delete(made.id)
    with pytest.raises(ValidationError) as raised:
        sdk.runs.create(workflow.id, {"doc": made.reference()})
    assert "body.inputs.doc.file_id" in [d.field for d in raised.value.details]
