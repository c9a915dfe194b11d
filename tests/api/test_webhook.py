"""POST /webhooks/github: signature, rules, idempotency (invariant 1) and limits."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from support.deliveries import GitHub

from starforge_dag.api import create_app
from starforge_dag.core.states import BuildState
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore


@pytest.fixture
def shop(build_store: BuildStore):
    return build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main")


def test_unsigned_or_badly_signed_delivery_is_refused_and_queues_nothing(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    raw = github_webhooks.encode(github_webhooks.push())
    missing = github_webhooks.deliver(body=raw, signature="")
    wrong_secret = github_webhooks.deliver(body=raw, secret="not-our-secret")
    signature = github_webhooks.headers(raw)["X-Hub-Signature-256"]
    tampered = github_webhooks.deliver(body=raw.replace(b"acme/shop", b"acme/shoq"), signature=signature)
    for response in (missing, wrong_secret, tampered):
        assert response.status_code == 401
        assert "X-Hub-Signature-256" in response.json()["detail"]
    assert build_store.list_builds() == []


def test_without_a_webhook_secret_every_delivery_is_refused(
    settings: Settings, github_webhooks: GitHub, signed_push: Callable[..., GitHub], build_store, shop
) -> None:
    unset = settings.model_copy(update={"github_webhook_secret": SecretStr("")})
    with TestClient(create_app(unset)) as open_client:
        response = signed_push(open_client, secret="").deliver(github_webhooks.push())
    assert response.status_code == 503
    assert "STARFORGE_GITHUB_WEBHOOK_SECRET" in response.json()["detail"]
    assert build_store.list_builds() == []


def test_ping_is_answered(github_webhooks: GitHub) -> None:
    response = github_webhooks.deliver({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert response.status_code == 200
    assert response.json()["status"] == "pong"


def test_push_queues_a_build_of_the_pushed_commit(github_webhooks: GitHub, build_store: BuildStore, shop) -> None:
    payload = github_webhooks.push(github_webhooks.commit("Add checkout"))
    response = github_webhooks.deliver(payload, delivery="delivery-1")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["builds"] == body["created"] and len(body["builds"]) == 1
    build = build_store.get_build(body["builds"][0])
    assert (build.app, build.ref, build.commit_sha) == ("shop", "main", payload["after"])
    assert (build.status, build.trigger, build.delivery_id) == (BuildState.QUEUED, "push", "delivery-1")


def test_redelivery_is_answered_with_the_same_builds_and_not_requeued(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    payload = github_webhooks.push()
    first = github_webhooks.deliver(payload, delivery="delivery-2")
    build_store.transition(first.json()["builds"][0], BuildState.CLONING, "picked up", "test")
    build_store.transition(first.json()["builds"][0], BuildState.PLANNING, "cloned", "test")
    build_store.transition(first.json()["builds"][0], BuildState.FAILED, "boom", "test")
    again = github_webhooks.deliver(payload, delivery="delivery-2")
    assert again.status_code == 200
    assert again.json()["status"] == "redelivery"
    assert again.json()["builds"] == first.json()["builds"] and again.json()["created"] == []
    assert len(build_store.list_builds()) == 1


def test_concurrent_redeliveries_queue_exactly_one_build(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    raw = json.dumps(github_webhooks.push()).encode()
    barrier = threading.Barrier(8)
    answers: list[tuple[int, list[int]]] = []

    def post() -> None:
        barrier.wait()
        response = github_webhooks.deliver(body=raw, delivery="delivery-storm")
        answers.append((response.status_code, response.json()["builds"]))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    builds = build_store.list_builds()
    assert len(builds) == 1
    assert sorted(code for code, _ in answers) == [200] * 7 + [202]
    assert all(ids == [builds[0].id] for _, ids in answers)


def test_second_delivery_of_the_same_commit_joins_the_active_build(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    payload = github_webhooks.push()
    first = github_webhooks.deliver(payload, delivery="delivery-a").json()
    second = github_webhooks.deliver(payload, delivery="delivery-b")
    assert second.status_code == 202
    assert second.json()["builds"] == first["builds"] and second.json()["created"] == []
    assert len(build_store.list_builds()) == 1


IGNORED = {
    "untracked branch": (lambda gh: gh.push(ref="refs/heads/feature/login"), "not tracked"),
    "tag": (lambda gh: gh.push(ref="refs/tags/v1.0.0"), "tag"),
    "deleted ref": (lambda gh: gh.push(deleted=True), "deleted"),
    "skip ci": (lambda gh: gh.push(gh.commit("Fix typo [skip ci]"), gh.commit("Docs [ci skip]")), "skip"),
    "watch paths miss": (lambda gh: gh.push(gh.commit("Docs", modified=("docs/index.md",))), "watch paths"),
}


@pytest.mark.parametrize("case", IGNORED)
def test_pushes_that_do_not_build_are_acknowledged_with_a_reason(
    github_webhooks: GitHub, build_store: BuildStore, case: str
) -> None:
    build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main", watch_paths=["app.py", "src/**"])
    make, reason = IGNORED[case]
    response = github_webhooks.deliver(make(github_webhooks))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ignored" and body["builds"] == []
    assert reason in body["reason"] and reason in body["ignored"][0]["reason"]
    assert build_store.list_builds() == []


def test_push_to_a_repository_no_app_tracks_is_acknowledged(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    response = github_webhooks.deliver(github_webhooks.push(full_name="acme/unrelated"))
    assert response.status_code == 200
    assert "no app tracks repository acme/unrelated" in response.json()["reason"]
    assert build_store.list_builds() == []


def test_monorepo_apps_each_get_their_own_build(github_webhooks: GitHub, build_store: BuildStore) -> None:
    api = build_store.add_app("acme", "api", "https://github.com/acme/shop.git", "main", root_dir="services/api")
    web = build_store.add_app("acme", "web", "https://github.com/acme/shop.git", "main", root_dir="services/web")
    both = github_webhooks.deliver(
        github_webhooks.push(github_webhooks.commit("Both", modified=("services/api/a.py", "services/web/b.js")))
    )
    assert both.status_code == 202
    assert sorted(build_store.get_build(i).app_id for i in both.json()["created"]) == [api.id, web.id]

    only_api = github_webhooks.deliver(
        github_webhooks.push(github_webhooks.commit("API only", modified=("services/api/a.py",)))
    )
    assert only_api.status_code == 202
    assert [build_store.get_build(i).app_id for i in only_api.json()["created"]] == [api.id]
    assert only_api.json()["ignored"] == [{"app": "acme/web", "reason": only_api.json()["ignored"][0]["reason"]}]
    assert "watch paths" in only_api.json()["ignored"][0]["reason"]


@pytest.mark.parametrize("repo_url", ["https://github.com/acme/shop", "git@github.com:acme/shop.git"])
def test_app_is_matched_by_clone_or_html_url_when_its_full_name_differs(
    github_webhooks: GitHub, build_store: BuildStore, repo_url: str
) -> None:
    build_store.add_app("acme", "shop", repo_url, "main", repo_full_name="acme/shop-before-rename")
    response = github_webhooks.deliver(github_webhooks.push())
    assert response.status_code == 202 and len(response.json()["created"]) == 1


def test_body_over_the_limit_is_refused_by_content_length(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    padded = github_webhooks.push(github_webhooks.commit("x" * (70 * 1024)))
    response = github_webhooks.deliver(padded)
    assert response.status_code == 413
    assert build_store.list_builds() == []


def test_body_over_the_limit_is_refused_while_reading_without_content_length(
    api_client: TestClient, github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    raw = github_webhooks.encode(github_webhooks.push(github_webhooks.commit("x" * (70 * 1024))))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 8192):
            yield raw[start : start + 8192]

    response = api_client.post(
        "/webhooks/github", content=chunks(), headers=github_webhooks.headers(raw, delivery="chunked")
    )
    assert response.status_code == 413
    assert build_store.list_builds() == []


def test_malformed_json_is_a_bad_request(github_webhooks: GitHub) -> None:
    response = github_webhooks.deliver(body=b'{"ref": "refs/heads/main",')
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["detail"]


def test_json_that_is_not_a_push_is_a_bad_request(github_webhooks: GitHub) -> None:
    response = github_webhooks.deliver({"ref": "refs/heads/main", "after": "a" * 40})
    assert response.status_code == 400
    assert "repository" in response.json()["detail"]


def test_unknown_event_is_accepted_and_ignored(github_webhooks: GitHub, build_store: BuildStore, shop) -> None:
    response = github_webhooks.deliver({"action": "opened", "issue": {"number": 1}}, event="issues")
    assert response.status_code == 200
    assert response.json()["status"] == "ignored" and "issues" in response.json()["reason"]
    assert build_store.list_builds() == []


@pytest.mark.parametrize("delivery", ["", "x" * 101, "id with spaces", "../../etc"])
def test_push_without_a_usable_delivery_id_is_a_bad_request(
    github_webhooks: GitHub, build_store: BuildStore, shop, delivery: str
) -> None:
    response = github_webhooks.deliver(github_webhooks.push(), delivery=delivery)
    assert response.status_code == 400 and "X-GitHub-Delivery" in response.json()["detail"]
    assert build_store.list_builds() == []


def test_form_encoded_delivery_is_accepted_with_the_signature_over_the_raw_body(
    github_webhooks: GitHub, build_store: BuildStore, shop
) -> None:
    payload = github_webhooks.push(github_webhooks.commit("Form"))
    queued = github_webhooks.deliver(payload, form=True)
    assert queued.status_code == 202, queued.text
    assert build_store.get_build(queued.json()["created"][0]).commit_sha == payload["after"]

    raw = github_webhooks.encode(github_webhooks.push(github_webhooks.commit("Other")), form=True)
    signed_as_json = github_webhooks.headers(
        github_webhooks.encode(github_webhooks.push(github_webhooks.commit("Other")))
    )["X-Hub-Signature-256"]
    refused = github_webhooks.deliver(
        body=raw, form=True, signature=signed_as_json
    )  # signed over the JSON, not the body
    assert refused.status_code == 401
    assert len(build_store.list_builds()) == 1


def test_every_answer_agrees_with_the_openapi_document(
    github_webhooks: GitHub, api_client: TestClient, build_store: BuildStore, shop
) -> None:
    documented = api_client.get("/openapi.json").json()["paths"]["/webhooks/github"]["post"]["responses"]
    payload = github_webhooks.push()
    answers = {
        "ping": github_webhooks.deliver({"zen": "hi"}, event="ping"),
        "other event": github_webhooks.deliver({"action": "opened"}, event="issues"),
        "ignored push": github_webhooks.deliver(github_webhooks.push(ref="refs/tags/v1")),
        "queued": github_webhooks.deliver(payload, delivery="agree-1"),
        "redelivery": github_webhooks.deliver(payload, delivery="agree-1"),
        "bad signature": github_webhooks.deliver(payload, secret="wrong"),
        "bad body": github_webhooks.deliver(body=b"{"),
        "too large": github_webhooks.deliver(github_webhooks.push(github_webhooks.commit("x" * 70_000))),
        "bad content type": github_webhooks.deliver(payload, content_type="text/plain"),
        "bad commit id": github_webhooks.deliver({**payload, "after": "HEAD"}),
    }
    expected = {"ping": 200, "other event": 200, "ignored push": 200, "queued": 202, "redelivery": 200}
    expected |= {"bad signature": 401, "bad body": 400, "too large": 413, "bad content type": 415, "bad commit id": 422}
    assert {name: answer.status_code for name, answer in answers.items()} == expected
    assert {str(code) for code in expected.values()} <= set(documented)
    assert "ignored" in documented["200"]["description"] and "queued" in documented["202"]["description"]
