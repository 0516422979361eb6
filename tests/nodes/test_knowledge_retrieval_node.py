"""The `knowledge_retrieval` kind end to end (engine, worker, real store): the best chunks
of a collection feed the next step; recorded in Retab's shape; another organization's
collection is a step error, never data."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from stepline.nodes.base import NodeContext, NodeError
from stepline.nodes.knowledge_retrieval import KnowledgeRetrievalNode
from stepline.providers.client import Endpoint
from stepline.records import RunStatus, StepStatus
from stepline.retrieval.chunking import chunk_text
from stepline.retrieval.embeddings import OpenAIEmbedder
from stepline.retrieval.library import KnowledgeLibrary, OrganizationKnowledge
from stepline.spec.models import NodeSpec
from stepline.spec.validate import WorkflowInvalid
from stepline.store import Store
from support.documents import DocumentBench
from support.knowledge import CORPUS, CORPUS_CHUNKING
from support.model_nodes import KEY, KEY_SECRET, catalog, provider
from support.openai_server import openai_stand_in


@pytest.fixture
async def bench(store: Store, tmp_path: Path) -> DocumentBench:
    bench = await DocumentBench.open(store, tmp_path)
    library = KnowledgeLibrary(store, bench.library)
    collection = await library.create(bench.organization_id, "encyclopedia")
    for name, text in CORPUS.items():
        await library.add_text(
            bench.organization_id, collection.id, text, source=name, options=CORPUS_CHUNKING
        )
    return bench


def search(**config: Any) -> dict[str, Any]:
    return {
        "id": "search",
        "type": "knowledge_retrieval",
        "config": {"collection": "encyclopedia", "query": "{{ inputs.question }}", **config},
    }


ANSWER = {
    "id": "answer",
    "type": "reshape",
    "config": {
        "output": {
            "best": "{{ nodes.search.output.results[0].text }}",
            "from": "{{ nodes.search.output.results[0].source }}",
        }
    },
}


async def test_the_best_chunks_feed_the_next_step_and_are_recorded(bench: DocumentBench) -> None:
    out = await bench.run([search(top_k=2), ANSWER], {"question": "why do corals turn white"})
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["search"]
    assert step.status is StepStatus.completed
    output = step.outputs
    collection = await bench.store.collections.find(bench.organization_id, "encyclopedia")
    assert collection is not None
    assert output["collection_id"] == str(collection.id)
    assert output["collection"] == "encyclopedia"
    assert output["count"] == len(output["results"]) == 2
    best = output["results"][0]
    assert "bleaching" in best["text"]
    assert best["source"] == "coral.md"
    assert best["file_id"] is None
    [expected] = [c for c in chunk_text(CORPUS["coral.md"], CORPUS_CHUNKING) if "bleach" in c.text]
    assert best["position"] == expected.position
    assert best["score"] >= output["results"][1]["score"]
    assert set(best) >= {"text", "score", "file_id", "source", "position"}
    # Seed 004's shapes.
    assert step.handle_inputs == {
        "input-json-0": {
            "type": "json",
            "data": {
                "collection": "encyclopedia",
                "query": "why do corals turn white",
                "top_k": 2,
            },
        }
    }
    assert step.handle_outputs == {"output-json-0": {"type": "json", "data": output}}
    assert out.steps["answer"].outputs == {"best": best["text"], "from": "coral.md"}


async def test_a_collection_is_named_by_id_too_and_min_score_filters(
    bench: DocumentBench,
) -> None:
    collection = await bench.store.collections.find(bench.organization_id, "encyclopedia")
    assert collection is not None
    out = await bench.run(
        [search(collection=str(collection.id), top_k=10, min_score=1e9)],
        {"question": "honey nectar"},
    )
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["search"].outputs["results"] == []
    assert out.steps["search"].handle_inputs["input-json-0"]["data"]["min_score"] == 1e9


async def test_a_hostile_query_runs_to_no_results(bench: DocumentBench) -> None:
    out = await bench.run([search()], {"question": '"* NEAR( -'})
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["search"].outputs["count"] == 0


async def test_another_organizations_collection_is_a_step_error(
    store: Store, bench: DocumentBench
) -> None:
    other = await store.organizations.ensure("other")
    theirs = await store.collections.create(other, "theirs")
    await store.collections.add_chunks(
        other, theirs.id, chunk_text("their secret plans"), source="x"
    )
    for key in ("theirs", str(theirs.id)):
        out = await bench.run([search(collection=key)], {"question": "secret plans"})
        assert out.run.status is RunStatus.failed
        step = out.steps["search"]
        assert step.status is StepStatus.error
        assert step.error == f"collection {key!r} not found"
        assert step.error_details is not None
        assert step.error_details.type == "CollectionNotFound"
        assert step.outputs is None
        assert "their secret plans" not in str(step.model_dump())


async def test_top_k_is_bounded_when_the_workflow_is_checked(bench: DocumentBench) -> None:
    with pytest.raises(WorkflowInvalid, match="top_k"):
        await bench.run([search(top_k=1000)], {"question": "anything"})


# --- hybrid ranking: the query embedded through a configured provider ------------------------


def _hybrid_context(
    kind: KnowledgeRetrievalNode,
    config: dict[str, Any],
    knowledge: OrganizationKnowledge,
    secrets: dict[str, str],
) -> NodeContext:
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=knowledge.organization_id,
        node=NodeSpec(id="search", type=kind.type, config=config),
        step_id="search",
        attempt=1,
        inputs=config,
        config=kind.config_model.model_validate(config),
        timeout_s=10,
        evaluate=lambda expression: None,
        scope={"inputs": {}, "nodes": {}, "secrets": secrets},
        knowledge=knowledge,
    )


async def test_with_embeddings_the_query_is_ranked_hybrid(store: Store) -> None:
    with openai_stand_in(api_key=KEY) as server:
        server.synonyms.update({"car": "automobile", "fix": "repair"})
        endpoint = Endpoint(base_url=server.base_url, api_key=KEY)
        org = await store.organizations.ensure()
        library = KnowledgeLibrary(store, embedder=OpenAIEmbedder(endpoint, "embed-1"))
        collection = await library.create(org, "garage", embedding_model="embed-1")
        for text in ("Automobile repair for brakes.", "Bread and yeast.", "Glacier valleys."):
            await library.add_text(org, collection.id, text, source=text)
        kind = KnowledgeRetrievalNode(catalog(provider(server.base_url)))
        config = {
            "collection": "garage",
            "query": "car fix",
            "top_k": 1,
            "embeddings": {"provider": "local", "model": "embed-1"},
        }
        assert kind.configured_secrets(config) == [("embeddings.provider", KEY_SECRET)]
        knowledge = OrganizationKnowledge(KnowledgeLibrary(store), org)
        result = await kind.run(_hybrid_context(kind, config, knowledge, {KEY_SECRET: KEY}))
        assert result.output["ranking"] == "hybrid"
        assert [r["text"] for r in result.output["results"]] == ["Automobile repair for brakes."]
        assert result.handle_inputs is not None
        recorded = result.handle_inputs["input-json-0"]["data"]
        assert recorded["embeddings"] == {"provider": "local", "model": "embed-1"}
        assert KEY not in str(result.handle_inputs)

        # Without the key in the organization's vault the step says which secret is missing.
        with pytest.raises(NodeError, match=KEY_SECRET):
            await kind.run(_hybrid_context(kind, config, knowledge, {}))
        # An unknown provider is the step's input error.
        bad = {**config, "embeddings": {"provider": "nowhere", "model": "embed-1"}}
        with pytest.raises(NodeError, match="nowhere"):
            await kind.run(_hybrid_context(kind, bad, knowledge, {KEY_SECRET: KEY}))
