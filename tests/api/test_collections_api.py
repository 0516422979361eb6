"""/v1/collections over HTTP against a real `stepline serve`: the whole lifecycle, ranking
over a small corpus, tenants never seeing each other's ids, limits and hostile input."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stepline.retrieval.library import MAX_SOURCE_CHARS
from support.knowledge import CORPUS, QUERIES
from support.server import ServeProcess

MakeKey = Callable[..., str]


@pytest.fixture
def http(api_server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def admin(request: pytest.FixtureRequest, make_key: MakeKey) -> str:
    return make_key(f"coll-{request.node.name}-{uuid.uuid4().hex[:8]}")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(http: httpx.Client, key: str, name: str, **extra: Any) -> dict[str, Any]:
    response = http.post("/v1/collections", json={"name": name, **extra}, headers=bearer(key))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_text(http: httpx.Client, key: str, cid: str, text: str, source: str) -> dict[str, Any]:
    response = http.post(
        f"/v1/collections/{cid}/sources",
        json={"text": text, "source": source},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def search(http: httpx.Client, key: str, cid: str, query: str, **extra: Any) -> httpx.Response:
    return http.post(
        f"/v1/collections/{cid}/search", json={"query": query, **extra}, headers=bearer(key)
    )


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert "error" in body, body
    if field is not None:
        assert field in [d["field"] for d in body["error"]["details"]], body


def test_lifecycle_create_add_list_search_remove_delete(http: httpx.Client, admin: str) -> None:
    collection = create(http, admin, "handbook", description="The staff handbook")
    cid = collection["id"]
    assert collection["name"] == "handbook" and collection["embedding_model"] is None
    assert http.get(f"/v1/collections/{cid}", headers=bearer(admin)).json() == collection

    listed = http.get("/v1/collections", headers=bearer(admin)).json()
    assert [c["id"] for c in listed["data"]] == [cid]

    source = add_text(http, admin, cid, "Holidays: staff get 25 days of leave a year.", "hr.md")
    assert source["source"] == "hr.md" and source["chunk_count"] == 1
    add_text(http, admin, cid, "Expenses are refunded within 30 days of a receipt.", "fin.md")
    sources = http.get(f"/v1/collections/{cid}/sources", headers=bearer(admin)).json()
    assert [s["source"] for s in sources["data"]] == ["hr.md", "fin.md"]

    found = search(http, admin, cid, "how many days of leave", top_k=3)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["ranking"] == "bm25" and body["collection"] == "handbook"
    first = body["results"][0]
    assert first["source"] == "hr.md" and "25 days" in first["text"]
    assert first["file_id"] is None and first["position"] == 0
    assert first["char_start"] == 0 and first["char_end"] > first["char_start"]
    high = search(http, admin, cid, "leave days", min_score=first["score"] + 1000).json()
    assert high["results"] == [] and high["count"] == 0

    removed = http.delete(
        f"/v1/collections/{cid}/sources/{source['source_id']}", headers=bearer(admin)
    )
    assert removed.status_code == 204, removed.text
    after = search(http, admin, cid, "leave holidays").json()
    assert all(r["source"] != "hr.md" for r in after["results"])

    assert http.delete(f"/v1/collections/{cid}", headers=bearer(admin)).status_code == 204
    assert_error(http.get(f"/v1/collections/{cid}", headers=bearer(admin)), 404)
    assert_error(search(http, admin, cid, "leave"), 404)


def test_the_expected_chunk_ranks_first(http: httpx.Client, admin: str) -> None:
    cid = create(http, admin, "corpus")["id"]
    for name, text in CORPUS.items():
        for number, paragraph in enumerate(text.split("\n\n")):
            add_text(http, admin, cid, paragraph, f"{name}#{number}")
    for query, phrase in QUERIES[:8]:
        answer = search(http, admin, cid, query, top_k=3)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert results and phrase in results[0]["text"], (query, results)


def test_another_organizations_ids_are_not_found_on_every_route(
    http: httpx.Client, admin: str, make_key: MakeKey
) -> None:
    cid = create(http, admin, "private")["id"]
    sid = add_text(http, admin, cid, "secret plans for the launch", "plans")["source_id"]
    other = make_key(f"coll-other-{uuid.uuid4().hex[:8]}")
    base = f"/v1/collections/{cid}"
    answers = [
        http.get(base, headers=bearer(other)),
        http.delete(base, headers=bearer(other)),
        http.get(f"{base}/sources", headers=bearer(other)),
        http.post(f"{base}/sources", json={"text": "x", "source": "y"}, headers=bearer(other)),
        http.delete(f"{base}/sources/{sid}", headers=bearer(other)),
        search(http, other, cid, "launch"),
    ]
    for answer in answers:
        assert_error(answer, 404)
    assert http.get("/v1/collections", headers=bearer(other)).json()["data"] == []
    # A file id of another organization (or none) is not found either.
    missing_file = http.post(
        f"{base}/sources", json={"file_id": str(uuid.uuid4())}, headers=bearer(admin)
    )
    assert_error(missing_file, 404)
    # The owner still has it all.
    assert search(http, admin, cid, "launch").json()["count"] == 1


def test_names_are_unique_and_listing_pages(http: httpx.Client, admin: str) -> None:
    create(http, admin, "one")
    again = http.post("/v1/collections", json={"name": "one"}, headers=bearer(admin))
    assert_error(again, 409)
    for name in ("two", "three"):
        create(http, admin, name)
    first = http.get("/v1/collections?limit=2", headers=bearer(admin)).json()
    assert [c["name"] for c in first["data"]] == ["three", "two"]
    rest = http.get(
        f"/v1/collections?limit=2&after={first['next_cursor']}", headers=bearer(admin)
    ).json()
    assert [c["name"] for c in rest["data"]] == ["one"]


def test_bad_input_names_the_field(http: httpx.Client, admin: str) -> None:
    cid = create(http, admin, "checks")["id"]
    headers = bearer(admin)
    assert_error(http.post("/v1/collections", json={"name": ""}, headers=headers), 422, "body.name")
    blank = http.post("/v1/collections", json={"name": "   "}, headers=headers)
    assert_error(blank, 422, "body.name")
    no_provider = {"name": "embedded", "embeddings": {"provider": "nowhere", "model": "m"}}
    assert_error(
        http.post("/v1/collections", json=no_provider, headers=headers),
        422,
        "body.embeddings.provider",
    )
    assert_error(http.get("/v1/collections/not-a-uuid", headers=headers), 422, "path.collection_id")
    assert_error(
        http.delete(f"/v1/collections/{cid}/sources/nope", headers=headers), 422, "path.source_id"
    )
    both = {"text": "a", "source": "b", "file_id": str(uuid.uuid4())}
    assert_error(http.post(f"/v1/collections/{cid}/sources", json=both, headers=headers), 422)
    no_label = {"text": "a"}
    assert_error(
        http.post(f"/v1/collections/{cid}/sources", json=no_label, headers=headers),
        422,
        "body.source",
    )
    assert_error(search(http, admin, cid, "x", top_k=0), 422, "body.top_k")
    assert_error(search(http, admin, cid, "x", top_k=10_000), 422, "body.top_k")
    assert_error(search(http, admin, cid, "x" * 20_000), 422, "body.query")
    deep: Any = "leaf"
    for _ in range(500):
        deep = {"a": deep}
    deep_answer = http.post(f"/v1/collections/{cid}/search", json={"query": deep}, headers=headers)
    assert_error(deep_answer, 422, "body")
    assert "deep" in deep_answer.json()["error"]["message"]


def test_a_huge_text_is_refused_with_413(http: httpx.Client, admin: str) -> None:
    cid = create(http, admin, "huge")["id"]
    answer = http.post(
        f"/v1/collections/{cid}/sources",
        json={"text": "word " * 2_200_000, "source": "big"},
        headers=bearer(admin),
    )
    assert_error(answer, 413)  # past the server's body limit
    assert "limit" in answer.json()["error"]["message"]
    # Within the body limit, past a source's: 413 naming the text and its limit.
    within = http.post(
        f"/v1/collections/{cid}/sources",
        json={"text": "x" * (MAX_SOURCE_CHARS + 1), "source": "big"},
        headers=bearer(admin),
    )
    assert_error(within, 413, "body.text")
    assert str(MAX_SOURCE_CHARS) in within.json()["error"]["message"]
    assert http.get(f"/v1/collections/{cid}/sources", headers=bearer(admin)).json()["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        '"',
        "NEAR(a b)",
        "*",
        "a OR b AND -c",
        "'; DROP TABLE chunks; --",
        "collection_key : x",
        "\x01\x02\x7f",
        "ünïcödé 漢字 🙂",
        "w " * 4000,
    ],
)
def test_hostile_queries_answer_200(http: httpx.Client, admin: str, query: str) -> None:
    cid = create(http, admin, f"hostile-{uuid.uuid4().hex[:6]}")["id"]
    add_text(http, admin, cid, "a plain text about birds and NEAR things", "plain")
    answer = search(http, admin, cid, query)
    assert answer.status_code == 200, answer.text


def test_a_query_holding_nul_is_refused_naming_it(http: httpx.Client, admin: str) -> None:
    cid = create(http, admin, "nul")["id"]
    assert_error(search(http, admin, cid, "a\x00b"), 422, "body.query")


def test_scopes_read_may_search_but_not_write(http: httpx.Client, make_key: MakeKey) -> None:
    org = f"coll-scopes-{uuid.uuid4().hex[:8]}"
    writer = make_key(org, ("write",))
    reader = make_key(org, ("read",))
    cid = create(http, writer, "scoped")["id"]
    add_text(http, writer, cid, "reading is allowed", "r")
    assert search(http, reader, cid, "reading").status_code == 200
    denied = http.post("/v1/collections", json={"name": "nope"}, headers=bearer(reader))
    assert_error(denied, 403)
    assert_error(http.get("/v1/collections"), 401)


def test_a_workflow_searches_a_collection_made_through_the_api(
    http: httpx.Client, admin: str
) -> None:
    cid = create(http, admin, "encyclopedia")["id"]
    for name, text in CORPUS.items():
        add_text(http, admin, cid, text, name)
    definition = {
        "name": "ask-the-encyclopedia",
        "inputs": {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        },
        "nodes": [
            {
                "id": "search",
                "type": "knowledge_retrieval",
                "config": {"collection": "encyclopedia", "query": "{{ inputs.question }}"},
            },
            {
                "id": "answer",
                "type": "reshape",
                "config": {"output": {"from": "{{ nodes.search.output.results[0].source }}"}},
            },
        ],
        "edges": [{"from": "search", "to": "answer"}],
    }
    created = http.post("/v1/workflows", json=definition, headers=bearer(admin))
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    answer = http.post(
        f"/v1/workflows/{workflow_id}/runs",
        params={"wait": "true", "timeout_s": 60},
        json={"inputs": {"question": "why do corals turn white"}},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "completed", run
    steps = {s["step_id"]: s for s in run["steps"]}
    output = steps["search"]["outputs"]
    assert output["collection_id"] == cid and output["collection"] == "encyclopedia"
    assert output["results"][0]["source"] == "coral.md"
    assert "bleaching" in output["results"][0]["text"]
    assert output == search(http, admin, cid, "why do corals turn white").json() | {
        "query": "why do corals turn white"
    }
    recorded = http.get(
        f"/v1/workflows/{workflow_id}/runs/{run['id']}/steps/search", headers=bearer(admin)
    )
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["handle_outputs"]["output-json-0"]["data"] == output
    assert steps["answer"]["outputs"] == {"from": "coral.md"}
