"""An embedded collection over HTTP: a `stepline serve` whose home configures an
OpenAI-compatible stand-in, the provider's key an organization's secret set over the API;
adds and searches embed through it, searches rank hybrid, and a workflow's
`knowledge_retrieval` step with the same embeddings ranks as the API does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.model_nodes import KEY, KEY_SECRET, MODEL
from support.openai_server import StandIn, openai_stand_in
from support.server import ServeProcess, make_key, start_server

TEXTS = ("Automobile repair for brakes.", "Bread and yeast.", "Glacier valleys.")


@pytest.fixture
def provider() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        running.synonyms.update({"car": "automobile", "fix": "repair"})
        yield running


@pytest.fixture
def server(tmp_path: Path, provider: StandIn) -> Iterator[ServeProcess]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "stepline.toml").write_text(
        f"""
[providers.local]
base_url = "{provider.base_url}"
api_key = "{{{{ secrets.{KEY_SECRET} }}}}"
default_model = "{MODEL}"

[providers.other]
base_url = "{provider.base_url}"
api_key = "{{{{ secrets.{KEY_SECRET} }}}}"
"""
    )
    process = start_server(home)
    try:
        yield process
    finally:
        process.stop()


def test_adds_and_searches_embed_through_the_configured_provider(server: ServeProcess) -> None:
    key = make_key(server.database_url, "embedded")
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {"name": "garage", "embeddings": {"provider": "local", "model": "e-1"}}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        keyless = http.post("/v1/collections", json=body)
        assert keyless.status_code == 422, keyless.text
        assert KEY_SECRET in keyless.json()["error"]["message"]
        put = http.put(f"/v1/secrets/{KEY_SECRET}", json={"value": KEY})
        assert put.status_code == 201, put.text

        created = http.post("/v1/collections", json=body)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        assert created.json()["embedding_model"] == "e-1"
        assert created.json()["embedding_provider"] == "local"
        assert http.get(f"/v1/collections/{cid}").json()["embedding_provider"] == "local"
        for text in TEXTS:
            added = http.post(f"/v1/collections/{cid}/sources", json={"text": text, "source": text})
            assert added.status_code == 201, added.text
        found = http.post(f"/v1/collections/{cid}/search", json={"query": "car fix", "top_k": 1})
        assert found.status_code == 200, found.text
        answer = found.json()
        assert answer["ranking"] == "hybrid"
        assert [r["text"] for r in answer["results"]] == [TEXTS[0]]
        assert KEY not in found.text

        definition = {
            "name": "garage-search",
            "nodes": [
                {
                    "id": "search",
                    "type": "knowledge_retrieval",
                    "config": {
                        "collection": "garage",
                        "query": "car fix",
                        "top_k": 1,
                        "embeddings": {"provider": "local", "model": "e-1"},
                    },
                }
            ],
            "edges": [],
        }
        workflow = http.post("/v1/workflows", json=definition)
        assert workflow.status_code == 201, workflow.text
        run = http.post(
            f"/v1/workflows/{workflow.json()['id']}/runs",
            params={"wait": "true", "timeout_s": 60},
            json={"inputs": {}},
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "completed", run.json()
        [step] = run.json()["steps"]
        assert step["outputs"]["ranking"] == "hybrid"
        assert step["outputs"]["results"] == answer["results"]


def test_a_collection_is_searched_only_with_the_provider_that_embedded_it(
    server: ServeProcess,
) -> None:
    key = make_key(server.database_url, "embedded-elsewhere")
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {"name": "garage", "embeddings": {"provider": "local", "model": "e-1"}}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        assert http.put(f"/v1/secrets/{KEY_SECRET}", json={"value": KEY}).status_code == 201
        cid = http.post("/v1/collections", json=body).json()["id"]
        added = http.post(f"/v1/collections/{cid}/sources", json={"text": TEXTS[0], "source": "a"})
        assert added.status_code == 201, added.text

        search = {"query": "car fix", "provider": "other"}
        refused = http.post(f"/v1/collections/{cid}/search", json=search)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert "'local'" in error["message"] and "'other'" in error["message"]
        assert [d["field"] for d in error["details"]] == ["body.provider"]
        more = {"text": TEXTS[1], "source": "b", "provider": "other"}
        assert http.post(f"/v1/collections/{cid}/sources", json=more).status_code == 422

        definition = {
            "name": "garage-elsewhere",
            "nodes": [
                {
                    "id": "search",
                    "type": "knowledge_retrieval",
                    "config": {
                        "collection": "garage",
                        "query": "car fix",
                        "embeddings": {"provider": "other", "model": "e-1"},
                    },
                }
            ],
            "edges": [],
        }
        workflow = http.post("/v1/workflows", json=definition)
        assert workflow.status_code == 201, workflow.text
        run = http.post(
            f"/v1/workflows/{workflow.json()['id']}/runs",
            params={"wait": "true", "timeout_s": 60},
            json={"inputs": {}},
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "failed", run.json()
        [step] = run.json()["steps"]
        assert "'local'" in step["error"] and "'other'" in step["error"]
