"""The saved credentials file: private, atomic, read back exactly, and loud when broken."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from uuid import uuid4

import pytest

from stepline.credentials import (
    API_KEY_ENV,
    Credentials,
    CredentialsError,
    credentials_path,
    find_api_key,
    load_credentials,
    save_credentials,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(tmp_path: Path) -> None:
    org = uuid4()
    path = save_credentials(
        "stp_secret", server="http://127.0.0.1:8000", organization_id=org, home=tmp_path
    )

    assert path == tmp_path / "credentials"
    assert json.loads(path.read_text()) == {
        "server": "http://127.0.0.1:8000",
        "api_key": "stp_secret",
        "organization_id": str(org),
    }
    assert load_credentials(tmp_path) == Credentials(
        api_key="stp_secret", server="http://127.0.0.1:8000", organization_id=org
    )


def test_server_and_organization_are_optional(tmp_path: Path) -> None:
    save_credentials("stp_only", home=tmp_path)
    assert load_credentials(tmp_path) == Credentials(api_key="stp_only")


def test_the_file_is_0600_and_a_missing_home_is_created_0700(tmp_path: Path) -> None:
    home = tmp_path / "deep" / ".stepline"
    old_umask = os.umask(0)  # the most permissive umask must not widen the modes
    try:
        path = save_credentials("stp_secret", home=home)
    finally:
        os.umask(old_umask)

    assert mode(path) == 0o600
    assert mode(home) == 0o700


def test_saving_again_replaces_a_loose_file_with_a_private_one(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    path.write_text('{"api_key": "stp_old"}')
    path.chmod(0o644)

    save_credentials("stp_new", home=tmp_path)

    assert mode(path) == 0o600
    loaded = load_credentials(tmp_path)
    assert loaded is not None and loaded.api_key == "stp_new"
    # Atomic: written beside the file and renamed over it, no temporary left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials"]


def test_no_file_is_none(tmp_path: Path) -> None:
    assert load_credentials(tmp_path) is None
    assert load_credentials(tmp_path / "missing-home") is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not valid JSON"),
        ('["stp_x"]', "JSON object"),
        ('{"server": "http://x"}', "'api_key'"),
        ('{"api_key": ""}', "'api_key'"),
        ('{"api_key": "stp_x", "server": 8000}', "'server'"),
        ('{"api_key": "stp_x", "organization_id": "acme"}', "'organization_id'"),
    ],
)
def test_a_corrupt_file_is_a_clear_error(tmp_path: Path, content: str, why: str) -> None:
    credentials_path(tmp_path).write_text(content)

    with pytest.raises(CredentialsError) as caught:
        load_credentials(tmp_path)

    message = str(caught.value)
    assert str(credentials_path(tmp_path)) in message
    assert why in message
    assert API_KEY_ENV in message  # and how to get going again


def test_the_environment_comes_before_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert find_api_key(tmp_path) is None

    save_credentials("stp_saved", home=tmp_path)
    assert find_api_key(tmp_path) == "stp_saved"

    monkeypatch.setenv(API_KEY_ENV, "stp_from_env")
    assert find_api_key(tmp_path) == "stp_from_env"

    # With the environment set, a broken file is not even read.
    credentials_path(tmp_path).write_text("{broken")
    assert find_api_key(tmp_path) == "stp_from_env"


def test_an_empty_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="api_key"):
        save_credentials("", home=tmp_path)
    assert not credentials_path(tmp_path).exists()
