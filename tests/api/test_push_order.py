"""The webhook passes the pushed commit's time and `forced` on: late older pushes never win, a force-push rewinds."""

from __future__ import annotations

from support.deliveries import GitHub

from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore


def _push(github: GitHub, message: str, minute: int, *, forced: bool = False) -> dict:
    commit = github.commit(message)
    commit["timestamp"] = f"2026-11-27T09:{minute:02d}:00+01:00"
    payload = github.push(commit)
    payload["forced"] = forced
    response = github.deliver(payload)
    assert response.status_code in (200, 202), response.text
    return response.json()


def test_a_late_delivery_of_an_older_commit_does_not_supersede_the_newer_one(
    github_webhooks: GitHub, build_store: BuildStore
) -> None:
    build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main")
    newer = _push(github_webhooks, "second", 20)["builds"][0]
    older = _push(github_webhooks, "first", 10)
    assert older["created"] == []
    assert build_store.get_build(newer).status == BuildState.QUEUED
    assert build_store.get_build(older["builds"][0]).status == BuildState.SUPERSEDED


def test_a_force_push_back_to_a_built_commit_rewinds_desired_state_without_a_build(
    github_webhooks: GitHub, build_store: BuildStore
) -> None:
    shop = build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main")
    built = {}
    for message, minute in (("first", 10), ("second", 20)):
        build_id = _push(github_webhooks, message, minute)["builds"][0]
        for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
            build_store.transition(build_id, state, state.value, "run:test")
        build_store.succeed(build_id, f"r/shop:{build_id}", f"sha256:{build_id:064x}", "pushed", "run:test")
        built[message] = build_id
    count = len(build_store.list_builds(app_id=shop.id))

    answer = _push(github_webhooks, "first", 10, forced=True)

    assert answer["created"] == [] and answer["builds"] == [built["first"]]
    assert len(build_store.list_builds(app_id=shop.id)) == count
    desired = build_store.desired_state(shop.id)
    assert desired.build_id == built["first"] and desired.actor == "ada" and desired.reason == "rewind"
    assert desired.note.startswith("rewind to")
