"""The `providers` section of the configuration file: what it accepts, what it refuses."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from stepline.providers.config import (
    ProviderConfigError,
    configured_providers,
    load_providers,
    secret_reference_name,
)
from stepline.settings import Settings

GOOD = """
[server]
something_else = true    # other sections are left to their readers

[providers.openai]
base_url = "https://api.openai.com/v1/"
api_key = "{{ secrets.OPENAI_KEY }}"
default_model = "gpt-4o-mini"
timeout_s = 20

[providers.openai.prices."gpt-4o-mini"]
prompt = 0.15
completion = 0.60

[providers.ollama]
base_url = "http://127.0.0.1:11434/v1"
structured_output = "tools"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stepline.toml"
    path.write_text(text)
    return path


def test_a_good_file_gives_every_provider_as_written(tmp_path: Path) -> None:
    catalog = load_providers(write(tmp_path, GOOD))
    assert sorted(catalog) == ["ollama", "openai"]
    openai = catalog["openai"]
    assert openai.base_url == "https://api.openai.com/v1"  # the trailing slash dropped
    assert openai.api_key_secret == "OPENAI_KEY"
    assert openai.default_model == "gpt-4o-mini"
    assert openai.timeout_s == 20
    assert openai.currency == "USD"
    price = openai.prices["gpt-4o-mini"]
    # Exactly as written: Decimal, never a binary float's neighbour.
    assert (price.prompt, price.completion) == (Decimal("0.15"), Decimal("0.60"))
    assert openai.structured_output == "json_schema"
    ollama = catalog["ollama"]
    assert ollama.api_key_secret is None
    assert ollama.structured_output == "tools"
    assert ollama.prices == {}


def test_no_file_means_no_providers_and_says_where_one_goes(tmp_path: Path) -> None:
    for catalog in (
        load_providers(tmp_path / "stepline.toml"),
        configured_providers(Settings(home=tmp_path)),
    ):
        assert len(catalog) == 0
        assert catalog.describe_missing("x") == (
            f"no provider 'x' is configured: there is no configuration file "
            f"{tmp_path / 'stepline.toml'} (write a [providers.x] table there, or point "
            "STEPLINE_CONFIG at a file that has one)"
        )


def test_an_unknown_name_lists_the_configured_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_providers(path).describe_missing("x") == (
        f"no provider 'x' is configured in {path} (configured: ollama, openai)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[providers.p]\nbase_url = "http://h/v1"\napi_key = "sk-literal"\n',
            "providers.p.api_key: must name a secret",
        ),
        (
            '[providers.p]\nbase_url = "http://h/v1"\napi_key = "{{ secrets.9BAD }}"\n',
            "providers.p.api_key: '9BAD' is not a secret name",
        ),
        ('[providers.p]\nbase_url = "ftp://h"\n', "providers.p.base_url: must be an http://"),
        ("[providers.p]\n", "providers.p.base_url: required field is missing"),
        ('[providers.p]\nbase_url = "http://h"\nmodel = "m"\n', "providers.p.model: unknown field"),
        (
            '[providers.p]\nbase_url = "http://h"\n[providers.p.prices.m]\nprompt = -1\n'
            "completion = 1\n",
            "providers.p.prices.m.prompt: Input should be greater than or equal to 0",
        ),
        (
            '[providers.p]\nbase_url = "http://h"\nstructured_output = "xml"\n',
            "providers.p.structured_output: Input should be 'json_schema' or 'tools'",
        ),
        ('providers = "none"\n', "`providers` must be a table"),
        ("[providers]\np = 1\n", "providers.p: must be a table"),
        ("[providers.p\n", "is not valid TOML"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProviderConfigError) as caught:
        load_providers(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.a]\nbase_url = "x"\n[providers.b]\napi_key = "k"\n')
    with pytest.raises(ProviderConfigError) as caught:
        load_providers(path)
    message = str(caught.value)
    for part in ("providers.a.base_url", "providers.b.base_url", "providers.b.api_key"):
        assert part in message


def test_the_file_is_stepline_config_else_the_home_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "stepline.toml").write_text('[providers.home]\nbase_url = "http://home/v1"\n')
    other = write(tmp_path, '[providers.other]\nbase_url = "http://other/v1"\n')
    assert list(configured_providers(Settings(home=home))) == ["home"]
    assert list(configured_providers(Settings(home=home, config=other))) == ["other"]
    assert list(configured_providers(Settings(home=tmp_path / "empty"))) == []


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.first]\nbase_url = "http://a/v1"\n')
    settings = Settings(home=tmp_path, config=path)
    assert list(configured_providers(settings)) == ["first"]
    path.write_text('[providers.second]\nbase_url = "http://b/v1"\n')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert list(configured_providers(settings)) == ["second"]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("{{ secrets.KEY }}", "KEY"),
        ("{{secrets.A_1}}", "A_1"),
        ("  {{ secrets.KEY }} ", "KEY"),
        ("sk-123", None),
        ("Bearer {{ secrets.KEY }}", None),
        ("{{ inputs.key }}", None),
    ],
)
def test_secret_reference_name(value: str, name: str | None) -> None:
    assert secret_reference_name(value) == name
