"""Human review over HTTP against a real `stepline serve`: list, approve, edit, reject."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from control_support import (
    client,
    create_workflow,
    edge,
    error_of,
    finished,
    hil_workflow,
    node,
    review_url,
    run_url,
    settled,
    start,
    steps_of,
)

from support.server import ServeProcess

MakeKey = Callable[..., str]


def pending(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/v1/reviews", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_hil_review_lifecycle_approve_with_an_edited_output(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("greeting"))
        run = start(http, workflow_id, {"name": "Ada"})
        paused = settled(http, workflow_id, run["id"])
        assert paused["status"] == "waiting_for_human"
        assert paused["lease_owner"] is None, "a paused run holds no worker"

        steps = steps_of(http, workflow_id, run["id"])
        check = steps["check"]
        assert check["status"] == "waiting_for_human"
        assert check["requires_human_review"] is True
        assert check["human_review_approved"] is None
        assert check["outputs"] == {"text": "hello Ada"}, "the proposal is on the step"
        assert steps["publish"]["status"] == "pending"

        (review,) = pending(http)
        assert review["id"] == check["id"]
        assert review["step_id"] == "check"
        assert review["run_id"] == run["id"]
        assert review["workflow_id"] == workflow_id
        assert review["review_url"] == review_url(workflow_id, run["id"], check["id"])
        assert pending(http, workflow_id=workflow_id) == [review]
        assert pending(http, workflow_id=str(uuid.uuid4())) == []

        edited = {"text": "Hello, Ada!"}
        decided = http.post(
            review_url(workflow_id, run["id"], "check"),
            json={"approved": True, "output": edited, "comment": "warmer"},
        )
        assert decided.status_code == 200, decided.text
        body = decided.json()
        assert body["changed"] is True
        assert body["step"]["human_review_approved"] is True
        assert body["step"]["human_reviewer"].startswith("key:")
        assert body["step"]["human_reviewed_at"] is not None
        assert body["step"]["step_metadata"]["review"]["comment"] == "warmer"
        assert body["run"]["id"] == run["id"]

        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, run["id"])
        assert steps["check"]["status"] == "completed"
        assert steps["check"]["outputs"] == edited
        assert steps["publish"]["outputs"] == {"published": edited}, "downstream sees the edit"
        assert steps["redo"]["status"] == "skipped"
        assert pending(http, workflow_id=workflow_id) == []

        again = http.post(
            review_url(workflow_id, run["id"], check["id"]),
            json={"approved": True, "output": edited, "comment": "warmer"},
        )
        assert again.status_code == 200, again.text
        assert again.json()["changed"] is False, "the same decision again is idempotent"

        other = http.post(review_url(workflow_id, run["id"], "check"), json={"approved": False})
        assert other.status_code == 409, other.text
        assert error_of(other)["code"] == "conflict"
        assert "already approved" in error_of(other)["message"]


def test_a_second_different_decision_while_waiting_is_a_conflict(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("twice", rejected_edge=False))
        run = start(http, workflow_id, {"name": "Bo"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        url = review_url(workflow_id, run["id"], "check")
        first = http.post(url, json={"approved": False, "comment": "wrong name"})
        assert first.status_code == 200, first.text
        second = http.post(url, json={"approved": True})
        assert second.status_code == 409, second.text
        assert "already rejected" in error_of(second)["message"]
        same = http.post(url, json={"approved": False, "comment": "wrong name"})
        assert same.status_code == 200 and same.json()["changed"] is False


def test_a_review_when_expression_pauses_only_the_outputs_it_matches(
    api_server: ServeProcess, org_key: str
) -> None:
    definition = {
        "name": "scored",
        "inputs": {"type": "object", "properties": {"score": {"type": "number"}}},
        "nodes": [
            node(
                "score",
                "reshape",
                {"output": {"score": "{{ inputs.score }}"}},
                review={"when": "output.score < 0.5"},
            ),
            node("report", "reshape", {"output": "score {{ nodes.score.output.score }}"}),
        ],
        "edges": [edge("score", "report")],
    }
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, definition)
        confident = start(http, workflow_id, {"score": 0.9})
        assert finished(http, workflow_id, confident["id"])["status"] == "completed"
        steps = steps_of(http, workflow_id, confident["id"])
        assert steps["score"]["requires_human_review"] is None

        doubtful = start(http, workflow_id, {"score": 0.2})
        assert settled(http, workflow_id, doubtful["id"])["status"] == "waiting_for_human"
        (review,) = pending(http, workflow_id=workflow_id)
        assert review["step_id"] == "score"
        assert review["outputs"] == {"score": 0.2}
        # By the step's UUID, without an edit: the proposed output stands.
        decided = http.post(
            review_url(workflow_id, doubtful["id"], review["id"]), json={"approved": True}
        )
        assert decided.status_code == 200, decided.text
        done = finished(http, workflow_id, doubtful["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, doubtful["id"])
        assert steps["score"]["outputs"] == {"score": 0.2}
        assert steps["score"]["human_review_approved"] is True
        assert steps["report"]["outputs"] == "score 0.2"


def test_a_rejection_follows_the_wired_rejected_edge(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("reject-wired"))
        run = start(http, workflow_id, {"name": "Cy"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        decided = http.post(
            review_url(workflow_id, run["id"], "check"),
            json={"approved": False, "comment": "not like this"},
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["step"]["human_review_approved"] is False
        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, run["id"])
        assert steps["check"]["status"] == "completed"
        assert steps["check"]["human_review_approved"] is False
        assert steps["redo"]["status"] == "completed"
        assert steps["redo"]["outputs"] == "redo Cy"
        assert steps["publish"]["status"] == "skipped"


def test_a_rejection_without_a_rejected_edge_fails_the_step_and_the_run(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("reject-unwired", rejected_edge=False))
        run = start(http, workflow_id, {"name": "Di"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        decided = http.post(
            review_url(workflow_id, run["id"], "check"),
            json={"approved": False, "comment": "nope"},
        )
        assert decided.status_code == 200, decided.text
        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "failed", done
        steps = steps_of(http, workflow_id, run["id"])
        assert steps["check"]["status"] == "error"
        assert "rejected by key:" in steps["check"]["error"]
        assert steps["check"]["error"].endswith(": nope")
        assert steps["publish"]["status"] in {"skipped", "cancelled", "pending"}
        assert steps["publish"]["outputs"] is None


def test_review_requests_that_cannot_be_honoured(
    api_server: ServeProcess, org_key: str, make_key: MakeKey
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("bad-requests"))
        run = start(http, workflow_id, {"name": "Ed"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        url = review_url(workflow_id, run["id"], "check")

        for body, field in [
            ({}, "body.approved"),
            ({"approved": "yes"}, "body.approved"),
            ({"approved": True, "verdict": "ok"}, "body.verdict"),
            ({"approved": True, "comment": 7}, "body.comment"),
        ]:
            response = http.post(url, json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in [d["field"] for d in error_of(response)["details"]], response.text

        unknown_run = review_url(workflow_id, str(uuid.uuid4()), "check")
        assert http.post(unknown_run, json={"approved": True}).status_code == 404
        unknown_step = review_url(workflow_id, run["id"], "nope")
        missing = http.post(unknown_step, json={"approved": True})
        assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
        other_workflow = create_workflow(http, hil_workflow("bad-requests-2"))
        wrong = review_url(other_workflow, run["id"], "check")
        assert http.post(wrong, json={"approved": True}).status_code == 404

        not_under_review = http.post(
            review_url(workflow_id, run["id"], "draft"), json={"approved": True}
        )
        assert not_under_review.status_code == 409, not_under_review.text
        assert "not waiting for a review" in error_of(not_under_review)["message"]

        stranger = make_key(f"stranger-of-{workflow_id}", ("run",))
        with client(api_server, stranger) as other:
            assert other.post(url, json={"approved": True}).status_code == 404
            assert all(r["run_id"] != run["id"] for r in pending(other))

        # The run is still waiting: nothing above decided anything.
        assert http.get(run_url(workflow_id, run["id"])).json()["status"] == "waiting_for_human"


def test_a_read_key_may_list_reviews_but_not_decide(
    api_server: ServeProcess, make_key: MakeKey
) -> None:
    org = "reviews-read-scope"
    admin = make_key(org)
    reader = make_key(org, ("read",))
    with client(api_server, admin) as http:
        workflow_id = create_workflow(http, hil_workflow("read-scope"))
        run = start(http, workflow_id, {"name": "Flo"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
    with client(api_server, reader) as http:
        assert [r["run_id"] for r in pending(http)] == [run["id"]]
        refused = http.post(review_url(workflow_id, run["id"], "check"), json={"approved": True})
        assert refused.status_code == 403
        assert error_of(refused)["code"] == "forbidden"
    with client(api_server, admin) as http:
        # Leave no run waiting in the shared server.
        http.post(review_url(workflow_id, run["id"], "check"), json={"approved": True})
        assert finished(http, workflow_id, run["id"])["status"] == "completed"


def test_reviews_are_cursor_paged_and_honour_the_workspace(
    api_server: ServeProcess, make_key: MakeKey
) -> None:
    org = "reviews-paging"
    key = make_key(org)
    space_a, space_b = str(uuid.uuid4()), str(uuid.uuid4())
    run_ids = []
    with client(api_server, key, **{"X-Workspace-Id": space_a}) as http:
        workflow_id = create_workflow(http, hil_workflow("paged"))
        for n in range(3):
            run = start(http, workflow_id, {"name": f"p{n}"})
            run_ids.append(run["id"])
        for run_id in run_ids:
            assert settled(http, workflow_id, run_id)["status"] == "waiting_for_human"

        first = http.get("/v1/reviews", params={"limit": 2})
        assert first.status_code == 200, first.text
        page = first.json()
        assert len(page["data"]) == 2 and page["next_cursor"]
        rest = http.get("/v1/reviews", params={"limit": 2, "after": page["next_cursor"]}).json()
        assert len(rest["data"]) == 1 and rest["next_cursor"] is None
        listed = [r["run_id"] for r in page["data"] + rest["data"]]
        assert sorted(listed) == sorted(run_ids), "each pending review exactly once"
        back = http.get("/v1/reviews", params={"limit": 2, "before": rest["prev_cursor"]}).json()
        assert [r["id"] for r in back["data"]] == [r["id"] for r in page["data"]]

        both = http.get("/v1/reviews", params={"after": "x", "before": "y"})
        assert both.status_code == 422
        garbage = http.get("/v1/reviews", params={"after": "not-a-cursor"})
        assert garbage.status_code == 422
        assert error_of(garbage)["details"][0]["field"] == "query.after"

    with client(api_server, key, **{"X-Workspace-Id": space_b}) as http:
        assert pending(http) == []
    with client(api_server, key) as http:
        assert len(pending(http, workflow_id=workflow_id)) == 3
        for run_id in run_ids:
            response = http.post(review_url(workflow_id, run_id, "check"), json={"approved": True})
            assert response.status_code == 200
        for run_id in run_ids:
            assert finished(http, workflow_id, run_id)["status"] == "completed"
        assert pending(http) == []


def test_retrying_a_run_failed_by_a_rejection_asks_for_a_new_review(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create_workflow(http, hil_workflow("reject-retry", rejected_edge=False))
        run = start(http, workflow_id, {"name": "Gus"})
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        url = review_url(workflow_id, run["id"], "check")
        assert http.post(url, json={"approved": False, "comment": "no"}).status_code == 200
        assert finished(http, workflow_id, run["id"])["status"] == "failed"

        retried = http.post(f"{run_url(workflow_id, run['id'])}/retry")
        assert retried.status_code == 202, retried.text
        assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
        (review,) = pending(http, workflow_id=workflow_id)
        assert review["step_id"] == "check"
        assert review["human_review_approved"] is None
        previous = review["step_metadata"]["previous_review"]
        assert previous["approved"] is False and previous["comment"] == "no"

        assert http.post(url, json={"approved": True}).status_code == 200
        done = finished(http, workflow_id, run["id"])
        assert done["status"] == "completed", done
        steps = steps_of(http, workflow_id, run["id"])
        assert steps["publish"]["outputs"] == {"published": {"text": "hello Gus"}}
        assert steps["draft"]["retry_count"] == 0
