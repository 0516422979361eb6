"""/v1/files over HTTP against a real `stepline serve`: upload (type sniffed, size limit),
list, read, download, delete; another organization's file is not found on every route;
a run's inputs refer to files of the caller's organization only."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from support.server import ServeProcess, make_key, start_server

MakeKey = Callable[..., str]
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    return f"files-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def http(api_server: ServeProcess, org: str, make_key: MakeKey) -> Iterator[httpx.Client]:
    key = make_key(org)
    with httpx.Client(
        base_url=api_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def other(api_server: ServeProcess, org: str, make_key: MakeKey) -> Iterator[httpx.Client]:
    key = make_key(org + "-other")
    with httpx.Client(
        base_url=api_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def upload(http: httpx.Client, name: str, data: bytes, mime: str = "text/plain") -> Any:
    response = http.post("/v1/files", files={"file": (name, data, mime)})
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body["error"]


def test_upload_list_get_download_delete(http: httpx.Client) -> None:
    made = upload(http, "invoice.pdf", PDF, "application/octet-stream")
    assert made["filename"] == "invoice.pdf"
    assert made["mime_type"] == "application/pdf"
    assert made["size"] == len(PDF)
    assert len(made["sha256"]) == 64 and made["created_at"]
    assert set(made) == {"id", "filename", "mime_type", "size", "sha256", "created_at"}

    got = http.get(f"/v1/files/{made['id']}")
    assert got.status_code == 200 and got.json() == made

    content = http.get(f"/v1/files/{made['id']}/content")
    assert content.status_code == 200
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"
    assert "invoice.pdf" in content.headers["content-disposition"]

    listed = http.get("/v1/files").json()
    assert [f["id"] for f in listed["data"]] == [made["id"]]

    assert http.delete(f"/v1/files/{made['id']}").status_code == 204
    for path in (f"/v1/files/{made['id']}", f"/v1/files/{made['id']}/content"):
        error_of(http.get(path), 404)
    error_of(http.delete(f"/v1/files/{made['id']}"), 404)
    assert http.get("/v1/files").json()["data"] == []


def test_the_type_is_sniffed_from_the_bytes_not_the_name(http: httpx.Client) -> None:
    made = upload(http, "fake.pdf", b"just some text, not a PDF\n", "application/pdf")
    assert made["mime_type"] != "application/pdf"
    assert made["mime_type"].startswith("text/")


def test_an_empty_file_is_a_file(http: httpx.Client) -> None:
    made = upload(http, "empty.txt", b"")
    assert made["size"] == 0
    assert http.get(f"/v1/files/{made['id']}/content").content == b""


def test_listing_pages_with_cursors(http: httpx.Client) -> None:
    ids = [upload(http, f"f{i}.txt", f"file {i}".encode())["id"] for i in range(5)]
    first = http.get("/v1/files", params={"limit": 2}).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:2]
    second = http.get("/v1/files", params={"limit": 2, "after": first["next_cursor"]}).json()
    assert [f["id"] for f in second["data"]] == ids[::-1][2:4]
    back = http.get("/v1/files", params={"limit": 2, "before": second["prev_cursor"]}).json()
    assert [f["id"] for f in back["data"]] == ids[::-1][:2]
    error_of(http.get("/v1/files", params={"after": "nonsense"}), 422)


def test_another_organizations_file_is_not_found_on_every_route(
    http: httpx.Client, other: httpx.Client
) -> None:
    made = upload(http, "mine.txt", b"mine")
    for path in (f"/v1/files/{made['id']}", f"/v1/files/{made['id']}/content"):
        error_of(other.get(path), 404)
    error_of(other.delete(f"/v1/files/{made['id']}"), 404)
    assert other.get("/v1/files").json()["data"] == []
    assert http.get(f"/v1/files/{made['id']}").status_code == 200


def test_a_malformed_id_is_422(http: httpx.Client) -> None:
    for path in ("/v1/files/nope", "/v1/files/nope/content"):
        error = error_of(http.get(path), 422)
        assert error["details"][0]["field"] == "path.file_id"
    error_of(http.delete("/v1/files/nope"), 422)


def test_no_file_part_is_422(http: httpx.Client) -> None:
    error = error_of(http.post("/v1/files", files={"other": ("a.txt", b"x")}), 422)
    assert "body.file" in [d["field"] for d in error["details"]]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b.txt", "a\\b.txt", "bad\nname.txt"],
)
def test_a_name_with_a_folder_or_control_character_is_refused(
    http: httpx.Client, name: str
) -> None:
    response = http.post("/v1/files", files={"file": (name, b"x")})
    # Clients (httpx) may strip the folder themselves: either way, nothing escapes its name.
    if response.status_code == 201:
        assert "/" not in response.json()["filename"] and "\\" not in response.json()["filename"]
    else:
        error_of(response, 422)


def test_unicode_and_quotes_in_a_name_are_kept_and_safely_quoted(http: httpx.Client) -> None:
    name = "it's résumé; x=1 ✓.txt"
    made = upload(http, name, b"hello")
    assert made["filename"] == name
    disposition = http.get(f"/v1/files/{made['id']}/content").headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and "\\" not in fallback
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name


def test_the_disposition_of_a_name_with_quotes_and_controls_stays_one_header_value() -> None:
    from stepline.api.routes.files import content_disposition

    disposition = content_disposition('a "b"\\c\r\nSet-Cookie: x.txt')
    assert "\r" not in disposition and "\n" not in disposition
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback == "a _b__c__Set-Cookie: x.txt"


def test_file_references_in_run_inputs(http: httpx.Client, other: httpx.Client) -> None:
    definition = {
        "name": "takes-a-file",
        "inputs": {"type": "object", "properties": {"invoice": {"type": "object"}}},
        "nodes": [{"id": "echo", "type": "reshape", "config": {"output": "{{ inputs.invoice }}"}}],
    }
    created = http.post("/v1/workflows", json=definition)
    assert created.status_code == 201, created.text
    runs = f"/v1/workflows/{created.json()['id']}/runs"
    mine = upload(http, "invoice.pdf", PDF)
    theirs = upload(other, "invoice.pdf", PDF)

    started = http.post(runs, json={"inputs": {"invoice": {"file_id": mine["id"]}}})
    assert started.status_code == 202, started.text

    for file_id in (str(uuid.uuid4()), theirs["id"], "not-a-uuid"):
        response = http.post(runs, json={"inputs": {"invoice": {"file_id": file_id}}})
        error = error_of(response, 422)
        assert [d["field"] for d in error["details"]] == ["body.inputs.invoice.file_id"]

    nested = {"invoice": {"pages": [{"scan": {"file_id": str(uuid.uuid4())}}]}}
    error = error_of(http.post(runs, json={"inputs": nested}), 422)
    assert error["details"][0]["field"] == "body.inputs.invoice.pages[0].scan.file_id"

    http.delete(f"/v1/files/{mine['id']}")
    response = http.post(runs, json={"inputs": {"invoice": {"file_id": mine["id"]}}})
    error_of(response, 422)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    home: Path = tmp_path_factory.mktemp("serve-small-files") / "home"
    env = {"STEPLINE_MAX_FILE_BYTES": "1000", "STEPLINE_MAX_BODY_BYTES": "500"}
    server = start_server(home, env=env)
    try:
        yield server
    finally:
        server.stop()


def test_a_file_past_the_limit_is_413_naming_it(small_server: ServeProcess) -> None:
    key = make_key(small_server.database_url, "small-files")
    with httpx.Client(
        base_url=small_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        assert client.post("/v1/files", files={"file": ("ok.bin", b"x" * 1000)}).status_code == 201
        error = error_of(client.post("/v1/files", files={"file": ("big.bin", b"x" * 1001)}), 413)
        assert "STEPLINE_MAX_FILE_BYTES" in error["message"] and "1000" in error["message"]
        assert client.get("/v1/files").json()["data"][0]["filename"] == "ok.bin"
        # The upload's own limit, not the smaller one of other bodies (500 bytes here).
        error_of(client.post("/v1/workflows", content=b"{" + b" " * 600 + b"}"), 413)


def test_scopes(api_server: ServeProcess, org: str, make_key: MakeKey) -> None:
    admin = {"Authorization": f"Bearer {make_key(org)}"}
    reader = {"Authorization": f"Bearer {make_key(org, scopes=('read',))}"}
    with httpx.Client(base_url=api_server.base_url, timeout=30) as client:
        made = client.post("/v1/files", files={"file": ("a.txt", b"a")}, headers=admin).json()
        assert client.get(f"/v1/files/{made['id']}", headers=reader).status_code == 200
        assert client.get(f"/v1/files/{made['id']}/content", headers=reader).content == b"a"
        error_of(client.post("/v1/files", files={"file": ("b.txt", b"b")}, headers=reader), 403)
        error_of(client.delete(f"/v1/files/{made['id']}", headers=reader), 403)
        error_of(client.get("/v1/files"), 401)


def test_a_run_reads_an_uploaded_file(http: httpx.Client) -> None:
    from control_support import finished, start

    definition = {
        "name": "reads-a-file",
        "inputs": {"type": "object", "properties": {"doc": {"type": "object"}}},
        "nodes": [{"id": "read", "type": "parse", "config": {"document": "{{ inputs.doc }}"}}],
    }
    created = http.post("/v1/workflows", json=definition)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    made = upload(http, "notes.txt", b"the uploaded words\n")
    run = start(http, workflow_id, {"doc": {"file_id": made["id"]}})
    done = finished(http, workflow_id, run["id"])
    assert done["status"] == "completed", done
    url = f"/v1/workflows/{workflow_id}/runs/{run['id']}/steps"
    steps = http.get(url, params={"include_io": "true"}).json()["data"]
    assert "the uploaded words" in str(steps[0]["outputs"])
