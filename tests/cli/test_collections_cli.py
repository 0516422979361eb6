"""`stepline collections` on the local database: real subprocesses on a private home."""

from __future__ import annotations

from pathlib import Path

from support.cli import stepline, stepline_json


def test_create_add_search_delete_locally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = stepline_json("collections", "create", "manuals", home=home)
    assert created["name"] == "manuals"
    added = stepline_json(
        "collections",
        "add",
        "manuals",
        "--text",
        "The boiler must be serviced every twelve months.",
        "--source",
        "boiler.md",
        home=home,
    )
    assert added["chunk_count"] == 1 and added["source"] == "boiler.md"
    page = tmp_path / "fridge.html"
    page.write_text("<html><body><p>Defrost the fridge when ice is thick.</p></body></html>")
    from_file = stepline_json("collections", "add", created["id"], str(page), home=home)
    assert from_file["source"] == "fridge.html" and from_file["file_id"]

    found = stepline_json("collections", "search", "manuals", "defrost ice", home=home)
    assert found["results"][0]["source"] == "fridge.html"
    assert found["results"][0]["file_id"] == from_file["file_id"]
    text = stepline(
        "collections", "search", "manuals", "boiler serviced", "--top-k", "1", home=home
    )
    assert text.returncode == 0 and "boiler.md" in text.stdout, text.stderr

    listed = stepline_json("collections", "list", home=home)
    assert [c["name"] for c in listed] == ["manuals"]
    again = stepline("collections", "create", "manuals", home=home)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert stepline("collections", "delete", "manuals", home=home).returncode == 0
    missing = stepline("collections", "search", "manuals", "x", home=home)
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_add_needs_exactly_one_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stepline_json("collections", "create", "c", home=home)
    neither = stepline("collections", "add", "c", home=home)
    assert neither.returncode == 2 and "give one of" in neither.stderr
    unlabelled = stepline("collections", "add", "c", "--text", "hello", home=home)
    assert unlabelled.returncode == 2 and "--source" in unlabelled.stderr
    bad_id = stepline("collections", "add", "c", "--file-id", "nope", home=home)
    assert bad_id.returncode == 2 and "--file-id" in bad_id.stderr
