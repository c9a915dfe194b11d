"""The build store on SQLite and real Postgres: atomic claims, deliveries, transitions, desired state."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from store_helpers import sha

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.core.states import WORKING, BuildState
from starforge_dag.store import BuildStore


def test_schema_is_created_by_alembic_on_first_use(store):
    from alembic.script import ScriptDirectory

    from starforge_dag.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(str(store.engine.url))).get_current_head()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
        assert "builds" in sa.inspect(conn).get_table_names()


def test_concurrent_claimers_never_share_a_build(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    for n in range(200):
        store.enqueue(app, f"ref-{n}", sha(n))  # distinct refs: nothing supersedes anything
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while batch := store.claim_queued(7, name):
            with lock:
                claimed.extend(b.id for b in batch)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(claimer, [f"claimer-{i}" for i in range(8)]))

    assert len(claimed) == 200 and len(set(claimed)) == 200


def test_same_delivery_twice_enqueues_once(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    first = store.record_delivery("delivery-1", "push", [(app, "main", sha(1))])
    again = store.record_delivery("delivery-1", "push", [(app, "main", sha(1))])
    assert not first.redelivery and first.created == [first.builds[0].id]
    assert again.redelivery and [b.id for b in again.builds] == [first.builds[0].id] and again.created == []
    other = store.record_delivery("delivery-2", "push", [(app, "main", sha(1))])
    assert not other.redelivery and other.created == [] and other.builds[0].id == first.builds[0].id
    assert len(store.list_builds(app_id=app.id)) == 1


def test_same_commit_builds_again_once_the_first_build_ended(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    first = store.enqueue(app, "main", sha(1)).build
    store.transition(first.id, BuildState.FAILED, "broken", "test")
    second = store.enqueue(app, "main", sha(1))
    assert second.created and second.build.id != first.id


def test_transitions_are_recorded_and_enforced(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    build = store.enqueue(app, "main", sha(1)).build
    store.transition(build.id, BuildState.CLONING, "cloning", "run:1", run_id="run-1")
    with pytest.raises(IllegalTransition):
        store.transition(build.id, BuildState.SUCCEEDED, "skip ahead", "run:1")
    store.transition(build.id, BuildState.FAILED, "clone failed", "run:1", error_step="clone_source")
    failed = store.get_build(build.id)
    assert failed.error == "clone failed" and failed.error_step == "clone_source" and failed.run_id == "run-1"
    with pytest.raises(IllegalTransition, match="re-execution"):
        store.transition(build.id, BuildState.CLONING, "again", "run:2")
    resumed = store.transition(build.id, BuildState.CLONING, "re-executed", "run:2", run_id="run-2", resume=True)
    assert resumed.status == BuildState.CLONING and resumed.error is None and resumed.run_id == "run-2"
    assert [(t.from_state, t.to_state, t.actor) for t in store.transitions(build.id)] == [
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


def test_desired_state_only_moves_forward_under_concurrency(store):
    """Invariant 2, with builds finishing in every order and at once."""
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    builds = [store.enqueue(app, f"r{n}", sha(n)).build for n in range(12)]
    for n, build in enumerate(builds):
        _pushed(store, build.id, base + timedelta(minutes=n))
    order = [5, 11, 0, 7, 3, 9, 1, 10, 2, 8, 4, 6]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: _succeed(store, builds[n].id), order))
    desired = store.desired_state(app.id)
    assert desired.build_id == builds[11].id and desired.commit_sha == sha(11)
    again = _succeed(store, builds[3].id)
    assert not again.moved and again.desired.build_id == builds[11].id


def test_queued_cancel_is_immediate_running_cancel_is_requested(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git")
    queued = store.enqueue(app, "a", sha(1)).build
    running = store.enqueue(app, "b", sha(2)).build
    store.transition(running.id, BuildState.CLONING, "go", "run")
    assert store.request_cancel(queued.id, "user").status == BuildState.CANCELED
    assert store.request_cancel(running.id, "user").status == BuildState.CLONING
    assert store.cancel_state(running.id) == BuildState.CANCELED
    assert [b.id for b, state in store.cancel_requests()] == [running.id]


def test_cancel_running_app_setting_supersedes_the_running_build(store):
    app = store.add_app("acme", "web", "https://example.invalid/acme/web.git", cancel_running=True)
    running = store.enqueue(app, "main", sha(1)).build
    store.transition(running.id, BuildState.CLONING, "go", "run")
    newer = store.enqueue(app, "main", sha(2)).build
    assert store.cancel_state(running.id) == BuildState.SUPERSEDED
    assert store.get_build(running.id).error == f"superseded by build {newer.id}"
    calm = store.add_app("acme", "calm", "https://example.invalid/acme/calm.git")
    busy = store.enqueue(calm, "main", sha(3)).build
    store.transition(busy.id, BuildState.CLONING, "go", "run")
    store.enqueue(calm, "main", sha(4))
    assert store.cancel_state(busy.id) is None


def test_apps_are_found_by_repository_name_or_url(store):
    app = store.add_app("acme", "web", "https://github.com/Acme/Web.git")
    assert app.repo_full_name == "acme/web"
    assert [a.id for a in store.apps_for_repo("Acme/Web")] == [app.id]
    assert store.get_app("acme/web").id == app.id and store.get_app("web").id == app.id
    with pytest.raises(ValueError, match="already exists"):
        store.add_app("acme", "web", "https://github.com/acme/other.git")
