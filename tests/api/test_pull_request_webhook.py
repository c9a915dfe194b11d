"""`pull_request` deliveries at the webhook: the fork gate, approvals, deduplication, and hostile payloads that get
a 4xx and queue nothing."""

from __future__ import annotations

import copy

import pytest
from support.deliveries import GitHub

from starforge_dag.core.models import App
from starforge_dag.github.sync import RECONCILE_TRIGGER
from starforge_dag.store import BuildStore


@pytest.fixture
def shop(build_store: BuildStore) -> App:
    app = build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main")
    return build_store.update_app(app.id, {"previews": True, "preview_label": "safe-to-preview"})


def test_member_pull_request_queues_a_preview_build_once_per_delivery(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    payload = github_webhooks.pull_request(7)
    first = github_webhooks.deliver(payload, event="pull_request", delivery="pr-delivery-1")
    assert first.status_code == 202, first.text
    (build,) = build_store.list_builds(app_id=shop.id)
    assert (build.environment, build.pr_number, build.ref, build.fork) == ("pr-7", 7, "refs/pull/7/head", False)
    assert first.json()["builds"] == [build.id] and first.json()["created"] == [build.id]

    again = github_webhooks.deliver(payload, event="pull_request", delivery="pr-delivery-1")
    assert again.status_code == 200 and again.json()["status"] == "redelivery"
    assert [b.id for b in build_store.list_builds(app_id=shop.id)] == [build.id]


def test_newer_commit_supersedes_the_older_preview_but_never_production(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    production = build_store.enqueue(shop, "main", github_webhooks.sha("main"), trigger="push").build
    github_webhooks.deliver(github_webhooks.pull_request(3, github_webhooks.sha("a")), event="pull_request")
    other = github_webhooks.deliver(github_webhooks.pull_request(4, github_webhooks.sha("x")), event="pull_request")
    newer = github_webhooks.deliver(
        github_webhooks.pull_request(3, github_webhooks.sha("b"), action="synchronize"), event="pull_request"
    )
    assert newer.status_code == 202 and other.status_code == 202
    by_sha = {b.commit_sha: b for b in build_store.list_builds(app_id=shop.id)}
    assert by_sha[github_webhooks.sha("a")].status.value == "superseded"
    assert by_sha[github_webhooks.sha("b")].status.value == "queued"
    assert by_sha[github_webhooks.sha("x")].status.value == "queued"  # another pull request's environment
    assert build_store.get_build(production.id).status.value == "queued"


def test_the_same_commit_builds_in_production_and_in_a_preview_separately(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    sha = github_webhooks.sha("shared")
    preview = github_webhooks.deliver(github_webhooks.pull_request(5, sha), event="pull_request")
    production = build_store.enqueue(shop, "main", sha, trigger="push")
    assert preview.status_code == 202 and production.created
    assert {b.environment for b in build_store.list_builds(app_id=shop.id)} == {"production", "pr-5"}


@pytest.mark.parametrize(
    ("why", "changes"),
    [
        ("fork", {"head_repo_id": 555, "head_full_name": "mallory/shop", "association": "CONTRIBUTOR"}),
        ("fork by a member", {"head_repo_id": 555, "head_full_name": "ada/shop", "association": "MEMBER"}),
        ("spoofed head name", {"head_repo_id": 555, "head_full_name": "acme/shop", "association": "OWNER"}),
        ("deleted head repository", {"head_repo_id": None, "association": "OWNER"}),
        ("outside contributor", {"association": "CONTRIBUTOR"}),
        ("first timer", {"association": "FIRST_TIME_CONTRIBUTOR"}),
        ("no association", {"association": "NONE"}),
    ],
)
def test_gated_pull_requests_are_recorded_and_held_until_approved(
    github_webhooks: GitHub, build_store: BuildStore, shop: App, api_client, why: str, changes: dict
) -> None:
    payload = github_webhooks.pull_request(9, github_webhooks.sha(why), **changes)
    answer = github_webhooks.deliver(payload, event="pull_request")
    assert answer.status_code == 200 and answer.json()["status"] == "recorded", answer.text
    assert build_store.list_builds(app_id=shop.id) == []
    (held,) = api_client.get("/apps/acme/shop/previews").json()
    assert held["held"] and held["head_sha"] == github_webhooks.sha(why) and held["held_reason"]

    approved = api_client.post("/apps/acme/shop/previews/9/approve", json={"by": "lead"})
    assert approved.status_code == 202, approved.text
    build = build_store.get_build(approved.json()["build"]["id"])
    assert build.environment == "pr-9" and build.commit_sha == github_webhooks.sha(why)
    assert build.no_cache is build.fork  # a fork's build reads no cached layer
    view = approved.json()["preview"]
    assert (view["held"], view["approved_by"], view["approved_sha"]) == (False, "api:lead", build.commit_sha)
    assert api_client.post("/apps/acme/shop/previews/9/approve").status_code == 409  # nothing waits any more

    # A new commit needs a new approval; the approved one's build is superseded.
    again = github_webhooks.pull_request(9, github_webhooks.sha(why + "2"), action="synchronize", **changes)
    assert github_webhooks.deliver(again, event="pull_request").json()["status"] == "recorded"
    assert [b.commit_sha for b in build_store.list_builds(app_id=shop.id)] == [build.commit_sha]
    assert build_store.get_build(build.id).status.value == "superseded"


def test_the_apps_label_approves_the_held_commit_and_other_labels_do_not(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    fork = {"head_repo_id": 555, "head_full_name": "mallory/shop", "association": "NONE"}
    sha = github_webhooks.sha("labelled")
    github_webhooks.deliver(github_webhooks.pull_request(2, sha, **fork), event="pull_request")
    other = github_webhooks.pull_request(2, sha, action="labeled", label="bug", author="lead", **fork)
    assert github_webhooks.deliver(other, event="pull_request").json()["status"] == "ignored"
    assert build_store.list_builds(app_id=shop.id) == []
    label = github_webhooks.pull_request(2, sha, action="labeled", label="Safe-To-Preview", author="lead", **fork)
    answer = github_webhooks.deliver(label, event="pull_request")
    assert answer.status_code == 202, answer.text
    (build,) = build_store.list_builds(app_id=shop.id)
    assert build.fork and build.commit_sha == sha
    record = build_store.preview(shop.id, 2)
    assert record is not None and record.approved_sha == sha and record.approved_by == "lead"


def test_apps_without_previews_and_unhandled_actions_build_nothing(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    build_store.update_app(shop.id, {"previews": False})
    off = github_webhooks.deliver(github_webhooks.pull_request(1), event="pull_request")
    assert off.status_code == 200 and "previews are off" in off.json()["reason"]
    build_store.update_app(shop.id, {"previews": True})
    edited = github_webhooks.deliver(github_webhooks.pull_request(1, action="edited"), event="pull_request")
    assert edited.status_code == 200 and edited.json()["status"] == "ignored"
    assert build_store.list_builds(app_id=shop.id) == []


def test_a_commit_the_reconciler_queued_for_the_branch_still_builds_its_preview(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    sha = github_webhooks.sha("merged")
    build_store.github().see(shop.id, sha, RECONCILE_TRIGGER)
    answer = github_webhooks.deliver(github_webhooks.pull_request(11, sha), event="pull_request")
    assert answer.status_code == 202, answer.text
    assert [b.environment for b in build_store.list_builds(app_id=shop.id)] == ["pr-11"]


def test_closing_tears_down_a_preview_even_after_previews_were_turned_off(
    github_webhooks: GitHub, build_store: BuildStore, shop: App
) -> None:
    github_webhooks.deliver(github_webhooks.pull_request(6), event="pull_request")
    (build,) = build_store.list_builds(app_id=shop.id)
    for state in ("cloning", "planning", "building", "pushing"):
        build_store.transition(build.id, state, state, "run:test")
    build_store.succeed(build.id, "r/acme/shop:6", "sha256:" + "6" * 64, "pushed", "run:test")
    build_store.update_app(shop.id, {"previews": False})
    closed = github_webhooks.deliver(github_webhooks.pull_request(6, action="closed"), event="pull_request")
    assert closed.status_code == 200 and closed.json()["status"] == "recorded", closed.text
    assert [(c.environment, c.reason) for c in build_store.changes_after(0)] == [
        ("pr-6", "build"),
        ("pr-6", "preview_closed"),
    ]
    never = github_webhooks.deliver(github_webhooks.pull_request(8, action="closed"), event="pull_request")
    assert never.json()["status"] == "ignored" and len(build_store.changes_after(0)) == 2


def _set(payload: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(payload)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("number", 0, 400),
        ("number", -1, 400),
        ("number", 2**31, 400),
        ("number", "7", 400),
        ("number", 7.0, 400),
        ("number", True, 400),
        ("number", None, 400),
        ("number", 8, 422),  # disagrees with pull_request.number
        ("pull_request.number", 2**63, 400),
        ("pull_request", _DELETE, 400),
        ("pull_request", [], 400),
        ("pull_request.head", _DELETE, 400),
        ("pull_request.head.sha", "main", 422),
        ("pull_request.head.sha", "0" * 39 + "\x00", 400),
        ("pull_request.head.sha", 12, 400),
        ("pull_request.head.repo.id", "123", 400),
        ("pull_request.head.repo.id", -5, 400),
        ("pull_request.base.repo.id", 999, 422),  # a base that is not the event's repository
        ("pull_request.base.repo.full_name", "evil/shop", 422),
        ("pull_request.base.repo", None, 422),
        ("pull_request.author_association", "x" * 300, 400),
        ("pull_request.user.login", "\ud800", 400),
        ("action", "", 400),
        ("action", "opened\x00", 400),
        ("action", "\udc80", 400),
        ("label", {"name": "x\x00"}, 400),
        ("action", 5, 400),
        ("repository.id", _DELETE, 422),
        ("repository", _DELETE, 400),
    ],
)
def test_hostile_pull_request_payloads_get_a_4xx_and_queue_nothing(
    github_webhooks: GitHub, build_store: BuildStore, shop: App, path: str, value: object, code: int
) -> None:
    payload = _set(github_webhooks.pull_request(7), path, value)
    answer = github_webhooks.deliver(payload, event="pull_request")
    assert answer.status_code == code, answer.text
    assert build_store.list_builds() == [] and build_store.previews_of(shop.id) == []


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"text"', b"null", b'{"action": "opened"}', b"[" * 5000 + b"]" * 5000])
def test_unreadable_pull_request_bodies_are_bad_requests(
    github_webhooks: GitHub, build_store: BuildStore, shop: App, raw: bytes
) -> None:
    answer = github_webhooks.deliver(body=raw, event="pull_request")
    assert answer.status_code == 400, answer.text
    assert build_store.list_builds() == []


@pytest.mark.parametrize("number", ["0", "-1", "2147483648", "abc", "1.5"])
def test_approval_of_an_out_of_range_number_is_refused(api_client, shop: App, number: str) -> None:
    answer = api_client.post(f"/apps/acme/shop/previews/{number}/approve")
    assert answer.status_code == 422, answer.text


def test_approval_of_an_unknown_pull_request_is_a_conflict(api_client, shop: App) -> None:
    answer = api_client.post("/apps/acme/shop/previews/12/approve")
    assert answer.status_code == 409 and "no pull request #12" in answer.json()["detail"]
