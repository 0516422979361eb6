"""`stepline providers list|test`, as an operator types them: real subprocesses on a
private home, against the stand-in provider."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import STEPLINE, cli_env
from support.model_nodes import KEY, KEY_SECRET, MODEL
from support.openai_server import StandIn, openai_stand_in


def stepline(
    home: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, *args],
        env=cli_env(home, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def provider() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


def configure(home: Path, base_url: str, *, name: str = "local", key: bool = True) -> None:
    home.mkdir(parents=True, exist_ok=True)
    api_key = f'api_key = "{{{{ secrets.{KEY_SECRET} }}}}"\n' if key else ""
    (home / "stepline.toml").write_text(
        f'[providers.{name}]\nbase_url = "{base_url}"\n{api_key}default_model = "{MODEL}"\n'
        f'[providers.{name}.prices."{MODEL}"]\nprompt = 0.15\ncompletion = 0.6\n'
    )


def test_list_shows_the_configured_providers(tmp_path: Path, provider: StandIn) -> None:
    configure(tmp_path, provider.base_url)
    done = stepline(tmp_path, "providers", "list")
    assert done.returncode == 0, done.stderr
    assert f"from {tmp_path / 'stepline.toml'}" in done.stdout
    for cell in ("local", provider.base_url, MODEL, KEY_SECRET):
        assert cell in done.stdout
    listed = json.loads(stepline(tmp_path, "providers", "list", "--json").stdout)
    assert listed == {
        "config": str(tmp_path / "stepline.toml"),
        "providers": [
            {
                "name": "local",
                "base_url": provider.base_url,
                "default_model": MODEL,
                "api_key_secret": KEY_SECRET,
                "structured_output": "json_schema",
                "currency": "USD",
                "prices": {MODEL: {"prompt": "0.15", "completion": "0.6"}},
            }
        ],
    }


def test_list_without_a_configuration_says_where_to_write_one(tmp_path: Path) -> None:
    done = stepline(tmp_path, "providers", "list")
    assert done.returncode == 0, done.stderr
    assert "no providers configured" in done.stdout
    assert str(tmp_path / "stepline.toml") in done.stdout


def test_a_broken_configuration_is_a_usage_error_also_for_serve(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    config = tmp_path / "elsewhere.toml"
    config.write_text('[providers.p]\nbase_url = "http://h/v1"\napi_key = "sk-literal"\n')
    for args in (("providers", "list"), ("serve", "--port", "1")):
        done = stepline(tmp_path, *args, STEPLINE_CONFIG=str(config))
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "providers.p.api_key: must name a secret" in done.stderr
        assert "Traceback" not in done.stderr


def test_test_sends_a_tiny_completion_with_the_key_from_the_environment(
    tmp_path: Path, provider: StandIn
) -> None:
    configure(tmp_path, provider.base_url)
    done = stepline(
        tmp_path, "providers", "test", "local", **{f"STEPLINE_SECRET_{KEY_SECRET}": KEY}
    )
    assert done.returncode == 0, done.stderr
    assert "provider 'local' answered in" in done.stdout
    assert (
        f"with model {MODEL}: '(stand-in answer) You said: Reply with the single word: ok'"
        in done.stdout
    )
    assert "6 prompt + 10 completion tokens; cost 0.0000069 USD" in done.stdout
    assert KEY not in done.stdout + done.stderr
    sent = provider.completions[-1]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Reply with the single word: ok"}],
        "stream": False,
    }


def test_test_reads_the_key_from_the_organizations_secrets(
    tmp_path: Path, provider: StandIn
) -> None:
    configure(tmp_path, provider.base_url)
    stored = stepline(tmp_path, "secrets", "set", KEY_SECRET, stdin=KEY + "\n")
    assert stored.returncode == 0, stored.stderr
    done = stepline(tmp_path, "providers", "test", "local", "--model", "other-model", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["model"] == "other-model"
    assert report["tokens"] == {"prompt": 6, "completion": 10, "total": 16}
    assert report["cost"] is None  # other-model has no price


def test_a_failing_provider_is_exit_1_with_the_reason_and_a_hint(
    tmp_path: Path, provider: StandIn
) -> None:
    configure(tmp_path, provider.base_url)
    done = stepline(tmp_path, "providers", "test", "local", STEPLINE_SECRET_LOCAL_KEY="sk-wrong")
    assert done.returncode == 1, done.stdout
    assert "provider 'local' failed the test (permanent)" in done.stderr
    assert "HTTP 401: Incorrect API key provided" in done.stderr
    assert "hint: check the key" in done.stderr
    report = json.loads(
        stepline(
            tmp_path, "providers", "test", "local", "--json", STEPLINE_SECRET_LOCAL_KEY="x"
        ).stdout
    )
    assert (report["ok"], report["category"], report["status_code"]) == (False, "permanent", 401)


def test_an_unreachable_provider_is_transient(tmp_path: Path) -> None:
    with openai_stand_in() as gone:
        url = gone.base_url
    configure(tmp_path, url, key=False)
    done = stepline(tmp_path, "providers", "test", "local", "--timeout", "2")
    assert done.returncode == 1
    assert "failed the test (transient): could not reach" in done.stderr
    assert "hint: check that base_url is right" in done.stderr


def test_usage_errors_are_exit_2(tmp_path: Path, provider: StandIn) -> None:
    configure(tmp_path, provider.base_url)
    unknown = stepline(tmp_path, "providers", "test", "nope")
    assert unknown.returncode == 2
    assert "no provider 'nope' is configured" in unknown.stderr
    unset = stepline(tmp_path, "providers", "test", "local")
    assert unset.returncode == 2
    assert f"secret {KEY_SECRET!r} (the key of provider 'local') is not set" in unset.stderr
    assert f"stepline secrets set {KEY_SECRET}" in unset.stderr


def test_the_extract_example_runs_offline_against_the_stand_in(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "extract-invoice.yaml"
    with openai_stand_in() as stand_in:
        configure(tmp_path, stand_in.base_url, key=False)
        done = stepline(
            tmp_path, "run", str(example), "-i", "text=Invoice INV-7, 99.50 EUR", "--json"
        )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "completed", document["error"]
    steps = {step["step_id"]: step for step in document["steps"]}
    assert steps["fields"]["node_type"] == "extract"
    assert set(steps["fields"]["outputs"]) == {"invoice_number", "total_amount", "currency"}
    assert steps["summary"]["outputs"]["confidence_info"]["error"] is None
    for step in steps.values():
        assert step["model"] == MODEL
        assert step["tokens"]["total"] > 0
        assert step["cost"]["total"] > 0
    assert document["total_tokens"] == sum(step["tokens"]["total"] for step in steps.values())
