"""A preview build's success moves only its environment; closing stops its builds, tears it down once, and a build
that finishes after the close moves nothing."""

from __future__ import annotations

from dataclasses import replace

from starforge_dag.core.previews import PullRequest
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore

OPENED = PullRequest("opened", 3, "a" * 40, 5, 5, "acme/web", "feature", "ada", "OWNER", "ada")


def _to_pushing(store: BuildStore, build_id: int) -> None:
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build_id, state, state.value, "run:test")


def test_preview_success_close_and_a_late_success(build_store: BuildStore) -> None:
    app = build_store.add_app("acme", "web", "file:///nowhere", "main")
    app = build_store.update_app(app.id, {"previews": True})
    first = build_store.record_pull_request("d-1", [app], OPENED).results[0].build
    assert first is not None
    _to_pushing(build_store, first.id)
    done = build_store.succeed(first.id, "r/acme/web:a", "sha256:" + "a" * 64, "pushed", "run:test")
    assert done.moved and done.change is not None and done.change.environment == "pr-3"
    assert build_store.desired_state(app.id) is None
    (state,) = build_store.preview_states()
    assert (state.environment, state.build_id, state.commit_sha) == ("pr-3", first.id, "a" * 40)
    retried = build_store.succeed(first.id, "r/acme/web:a", "sha256:" + "a" * 64, "pushed", "run:test")
    assert retried.moved and retried.change == done.change  # a retry after a lost commit reports what it did

    second = build_store.record_pull_request("d-2", [app], replace(OPENED, action="synchronize", head_sha="b" * 40))
    running = second.results[0].build
    assert running is not None
    _to_pushing(build_store, running.id)
    closed = build_store.record_pull_request("d-3", [app], replace(OPENED, action="closed", head_sha="b" * 40))
    assert closed.results[0].action == "closed"
    late = build_store.succeed(running.id, "r/acme/web:b", "sha256:" + "b" * 64, "pushed", "run:test")
    assert late.build.status == BuildState.SUPERSEDED and not late.moved

    feed = build_store.changes_after(0)
    assert [(c.environment, c.reason, c.build_id) for c in feed] == [
        ("pr-3", "build", first.id),
        ("pr-3", "preview_closed", None),
    ]
    assert build_store.preview_states() == [] and build_store.changes_after(0, environment="production") == []
    again = build_store.record_pull_request("d-4", [app], replace(OPENED, action="closed", head_sha="b" * 40))
    assert again.results[0].action == "closed" and len(build_store.changes_after(0)) == 2  # torn down once
    assert build_store.record_pull_request("d-3", [app], OPENED).redelivery


def test_reopening_builds_again_and_other_apps_are_left_alone(build_store: BuildStore) -> None:
    web = build_store.update_app(build_store.add_app("acme", "web", "file:///r", "main").id, {"previews": True})
    api = build_store.add_app("acme", "api", "file:///r", "main")
    build_store.record_pull_request("o", [web], OPENED)
    build_store.record_pull_request("c", [web], replace(OPENED, action="closed"))
    reopened = build_store.record_pull_request("r", [web], replace(OPENED, action="reopened"))
    build = reopened.results[0].build
    assert build is not None and build.status == BuildState.QUEUED and build.environment == "pr-3"
    record = build_store.preview(web.id, 3)
    assert record is not None and record.state == "open"
    assert build_store.list_builds(app_id=api.id) == [] and build_store.previews_of(api.id) == []
