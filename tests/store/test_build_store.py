"""The build store on SQLite and real Postgres: atomic claims, deliveries, transitions, desired state."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from support.facts import sha

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.core.states import WORKING, BuildState
from starforge_dag.store import BuildStore


def test_schema_is_created_by_alembic_on_first_use(build_store):
    from alembic.script import ScriptDirectory

    from starforge_dag.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(str(build_store.engine.url))).get_current_head()
    with build_store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
        assert "builds" in sa.inspect(conn).get_table_names()


def test_concurrent_claimers_never_share_a_build(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    for n in range(200):
        build_store.enqueue(app, f"ref-{n}", sha(n))  # distinct refs: nothing supersedes anything
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while batch := build_store.claim_queued(7, name):
            with lock:
                claimed.extend(b.id for b in batch)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(claimer, [f"claimer-{i}" for i in range(8)]))

    assert len(claimed) == 200 and len(set(claimed)) == 200


def test_same_delivery_twice_enqueues_once(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    first = build_store.record_delivery("delivery-1", "push", [(app, "main", sha(1))])
    again = build_store.record_delivery("delivery-1", "push", [(app, "main", sha(1))])
    assert not first.redelivery and first.created == [first.builds[0].id]
    assert again.redelivery and [b.id for b in again.builds] == [first.builds[0].id] and again.created == []
    other = build_store.record_delivery("delivery-2", "push", [(app, "main", sha(1))])
    assert not other.redelivery and other.created == [] and other.builds[0].id == first.builds[0].id
    assert len(build_store.list_builds(app_id=app.id)) == 1


def test_same_commit_builds_again_once_the_first_build_ended(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    first = build_store.enqueue(app, "main", sha(1)).build
    build_store.transition(first.id, BuildState.FAILED, "broken", "test")
    second = build_store.enqueue(app, "main", sha(1))
    assert second.created and second.build.id != first.id


def test_transitions_are_recorded_and_enforced(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    build = build_store.enqueue(app, "main", sha(1)).build
    build_store.transition(build.id, BuildState.CLONING, "cloning", "run:1", run_id="run-1")
    with pytest.raises(IllegalTransition):
        build_store.transition(build.id, BuildState.SUCCEEDED, "skip ahead", "run:1")
    build_store.transition(build.id, BuildState.FAILED, "clone failed", "run:1", error_step="clone_source")
    failed = build_store.get_build(build.id)
    assert failed.error == "clone failed" and failed.error_step == "clone_source" and failed.run_id == "run-1"
    with pytest.raises(IllegalTransition, match="re-execution"):
        build_store.transition(build.id, BuildState.CLONING, "again", "run:2")
    resumed = build_store.transition(build.id, BuildState.CLONING, "re-executed", "run:2", run_id="run-2", resume=True)
    assert resumed.status == BuildState.CLONING and resumed.error is None and resumed.run_id == "run-2"
    assert [(t.from_state, t.to_state, t.actor) for t in build_store.transitions(build.id)] == [
        (None, BuildState.QUEUED, "api"),
        (BuildState.QUEUED, BuildState.CLONING, "run:1"),
        (BuildState.CLONING, BuildState.FAILED, "run:1"),
        (BuildState.FAILED, BuildState.CLONING, "run:2"),
    ]


def _pushed(store: BuildStore, build_id: int, commit_time: datetime) -> None:
    """A build whose image is pushed: one step short of success."""
    store.set_commit_time(build_id, commit_time)
    for state in WORKING:
        store.transition(build_id, state, state.value, "test")


def _succeed(store: BuildStore, build_id: int):
    return store.succeed(build_id, f"r/app:{build_id}", f"sha256:{build_id:064x}", "pushed", "test")


def test_desired_state_only_moves_forward_under_concurrency(build_store):
    """Invariant 2, with builds finishing in every order and at once."""
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    builds = [build_store.enqueue(app, f"r{n}", sha(n)).build for n in range(12)]
    for n, build in enumerate(builds):
        _pushed(build_store, build.id, base + timedelta(minutes=n))
    order = [5, 11, 0, 7, 3, 9, 1, 10, 2, 8, 4, 6]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: _succeed(build_store, builds[n].id), order))
    desired = build_store.desired_state(app.id)
    assert desired.build_id == builds[11].id and desired.commit_sha == sha(11)
    again = _succeed(build_store, builds[3].id)
    assert not again.moved and again.desired.build_id == builds[11].id


def test_queued_cancel_is_immediate_running_cancel_is_requested(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    queued = build_store.enqueue(app, "a", sha(1)).build
    running = build_store.enqueue(app, "b", sha(2)).build
    build_store.transition(running.id, BuildState.CLONING, "go", "run")
    assert build_store.request_cancel(queued.id, "user").status == BuildState.CANCELED
    assert build_store.request_cancel(running.id, "user").status == BuildState.CLONING
    assert build_store.cancel_state(running.id) == BuildState.CANCELED
    assert [b.id for b, state in build_store.cancel_requests()] == [running.id]


def test_cancel_running_app_setting_supersedes_the_running_build(build_store):
    app = build_store.add_app("acme", "web", "https://example.invalid/acme/web.git", cancel_running=True)
    running = build_store.enqueue(app, "main", sha(1)).build
    build_store.transition(running.id, BuildState.CLONING, "go", "run")
    newer = build_store.enqueue(app, "main", sha(2)).build
    assert build_store.cancel_state(running.id) == BuildState.SUPERSEDED
    assert build_store.get_build(running.id).error == f"superseded by build {newer.id}"
    calm = build_store.add_app("acme", "calm", "https://example.invalid/acme/calm.git")
    busy = build_store.enqueue(calm, "main", sha(3)).build
    build_store.transition(busy.id, BuildState.CLONING, "go", "run")
    build_store.enqueue(calm, "main", sha(4))
    assert build_store.cancel_state(busy.id) is None


def test_apps_are_found_by_repository_name_or_url(build_store):
    app = build_store.add_app("acme", "web", "https://github.com/Acme/Web.git")
    assert app.repo_full_name == "acme/web"
    assert [a.id for a in build_store.apps_for_repo("Acme/Web")] == [app.id]
    assert build_store.get_app("acme/web").id == app.id and build_store.get_app("web").id == app.id
    with pytest.raises(ValueError, match="already exists"):
        build_store.add_app("acme", "web", "https://github.com/acme/other.git")
