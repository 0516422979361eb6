"""Encryption at rest: the operator's key or a key file made 0600 on first use; a value
sealed for one organization, workspace and name opens nowhere else."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from stepline.records import new_id
from stepline.secrets.cipher import (
    KEY_FILE,
    SecretCipher,
    SecretDecryptError,
    SecretKeyError,
    generate_key,
    key_from_file,
    load_cipher,
    parse_key,
)
from stepline.settings import Settings


def place() -> dict[str, object]:
    return {"organization_id": new_id(), "workspace_id": None, "name": "API_KEY"}


def test_a_value_round_trips_and_is_not_in_the_ciphertext() -> None:
    cipher = SecretCipher(parse_key(generate_key(), source="test"))
    where = place()
    sealed = cipher.encrypt("sk-live-123", **where)  # type: ignore[arg-type]
    assert b"sk-live-123" not in sealed
    assert cipher.encrypt("sk-live-123", **where) != sealed  # type: ignore[arg-type]
    assert cipher.decrypt(sealed, **where) == "sk-live-123"  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["organization_id", "workspace_id", "name"])
def test_a_ciphertext_moved_to_another_place_does_not_open(field: str) -> None:
    cipher = SecretCipher(parse_key(generate_key(), source="test"))
    where = place()
    sealed = cipher.encrypt("v", **where)  # type: ignore[arg-type]
    moved = {**where, field: "OTHER" if field == "name" else new_id()}
    with pytest.raises(SecretDecryptError, match="cannot be decrypted"):
        cipher.decrypt(sealed, **moved)  # type: ignore[arg-type]


def test_another_key_cannot_open_it() -> None:
    where = place()
    sealed = SecretCipher(parse_key(generate_key(), source="a")).encrypt("v", **where)  # type: ignore[arg-type]
    other = SecretCipher(parse_key(generate_key(), source="b"))
    with pytest.raises(SecretDecryptError, match="another STEPLINE_SECRETS_KEY"):
        other.decrypt(sealed, **where)  # type: ignore[arg-type]


def test_the_operator_key_is_used_and_no_key_file_is_made(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()  # the documented way to make one
    settings = Settings(home=tmp_path, secrets_key=SecretStr(key))
    where = place()
    sealed = load_cipher(settings).encrypt("v", **where)  # type: ignore[arg-type]
    assert SecretCipher(parse_key(key, source="k")).decrypt(sealed, **where) == "v"  # type: ignore[arg-type]
    assert not (tmp_path / KEY_FILE).exists()


# Named ids: the truncated key is random, and pytest-xdist's workers must collect one list.
@pytest.mark.parametrize(
    "bad",
    ["", "short", "!" * 44, generate_key()[:-4]],
    ids=["empty", "short", "not-base64", "truncated"],
)
def test_a_malformed_operator_key_is_refused_with_how_to_make_one(tmp_path: Path, bad: str) -> None:
    settings = Settings(home=tmp_path, secrets_key=SecretStr(bad))
    with pytest.raises(SecretKeyError, match="STEPLINE_SECRETS_KEY is not a valid") as caught:
        load_cipher(settings)
    assert "Fernet.generate_key" in str(caught.value)


def test_without_a_key_one_is_made_0600_on_first_use_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = load_cipher(Settings(home=home))
    path = home / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    where = place()
    sealed = first.encrypt("v", **where)  # type: ignore[arg-type]
    assert load_cipher(Settings(home=home)).decrypt(sealed, **where) == "v"  # type: ignore[arg-type]
    assert [p.name for p in home.iterdir()] == [KEY_FILE]  # no temporary file left


def test_processes_racing_to_make_the_key_file_all_get_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(key_from_file(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_a_damaged_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key\n")
    with pytest.raises(SecretKeyError, match=str(tmp_path / KEY_FILE)):
        load_cipher(Settings(home=tmp_path))
