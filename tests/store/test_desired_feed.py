"""Desired state's change feed (invariant 9): gap-free revisions under concurrent writers, pins, rollbacks."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.builds import pushing_build, succeed
from support.facts import sha

from starforge_dag.core.models import App
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore, ChangeRefused


@pytest.fixture
def app(build_store: BuildStore) -> App:
    return build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main")


def test_every_change_gets_the_next_revision_in_the_same_transaction(build_store, app):
    first = pushing_build(build_store, app, 1)
    outcome = succeed(build_store, first)
    assert outcome.moved and outcome.change is not None
    assert (outcome.change.revision, outcome.change.reason, outcome.change.build_id) == (1, "build", first.id)
    assert outcome.change.pinned_image == f"127.0.0.1:5000/apps/acme/web@sha256:{first.id:064x}"
    assert build_store.desired_state(app.id).revision == 1
    second = pushing_build(build_store, app, 2)
    assert succeed(build_store, second).change.revision == 2
    assert succeed(build_store, second).change.revision == 2  # a retried success reports the same change
    assert [c.revision for c in build_store.changes_after(0)] == [1, 2] and build_store.latest_revision() == 2


def test_concurrent_builds_rollbacks_and_pins_leave_no_gap(build_store):
    """20 builds across 5 apps finish at once while operators roll back and pin: revisions 1..N, none lost."""
    apps = [build_store.add_app("acme", f"app{i}", f"https://github.com/acme/app{i}.git", "main") for i in range(5)]
    builds = [(a, pushing_build(build_store, a, n)) for n in range(1, 5) for a in apps]
    random.Random(7).shuffle(builds)
    first = {a.id: b for a, b in reversed(builds)}
    for a in apps:  # each app starts from one desired build, so rollbacks have a target
        succeed(build_store, first[a.id])
    rest = [(a, b) for a, b in builds if b.id != first[a.id].id]
    start = threading.Barrier(len(rest) + 4)

    def build(item):
        start.wait(timeout=60)
        succeed(build_store, item[1])

    def operate(n: int):
        start.wait(timeout=60)
        target = apps[n]
        for _ in range(3):
            build_store.pin(target.id, f"op{n}")
            try:
                build_store.rollback(target.id, first[target.id].id, f"op{n}")
            except ChangeRefused:  # its first build is still the desired one
                pass
            build_store.unpin(target.id, f"op{n}")

    with ThreadPoolExecutor(max_workers=len(rest) + 4) as pool:
        futures = [pool.submit(build, item) for item in rest] + [pool.submit(operate, n) for n in range(4)]
        for future in futures:
            future.result(timeout=120)
    for a in apps:  # then roll each app back to a build that is not its current one
        current = build_store.desired_state(a.id).build_id
        target = next(b for x, b in builds if x.id == a.id and b.id != current)
        build_store.rollback(a.id, target.id, "grace")

    changes = build_store.changes_after(0, limit=10_000)
    assert [c.revision for c in changes] == list(range(1, len(changes) + 1))
    assert {c.reason for c in changes} >= {"build", "rollback", "pin", "unpin"}
    for a in apps:  # the feed replayed gives each app's current state
        last = [c for c in changes if c.app_id == a.id][-1]
        desired = build_store.desired_state(a.id)
        assert (desired.build_id, desired.revision, desired.pinned) == (last.build_id, last.revision, last.pinned)
    succeeded = [b for b in build_store.list_builds(limit=100) if b.status == BuildState.SUCCEEDED]
    assert len(succeeded) == 20


def test_a_pin_holds_successful_builds_until_unpin(build_store, app):
    base = pushing_build(build_store, app, 1)
    succeed(build_store, base)
    pin = build_store.pin(app.id, "grace", "incident 42")
    assert (pin.reason, pin.actor, pin.note, pin.pinned, pin.build_id) == ("pin", "grace", "incident 42", True, base.id)
    newer = pushing_build(build_store, app, 2)
    outcome = succeed(build_store, newer)
    assert outcome.build.status == BuildState.SUCCEEDED and not outcome.moved and outcome.build.held_by_pin
    held = build_store.desired_state(app.id)
    assert (held.build_id, held.pinned, held.held_build_id) == (base.id, True, newer.id)
    assert build_store.latest_revision() == pin.revision  # a held build is no change
    with pytest.raises(ChangeRefused, match="already pinned"):
        build_store.pin(app.id, "grace")
    unpin = build_store.unpin(app.id, "grace")
    assert (unpin.reason, unpin.build_id, unpin.pinned) == ("unpin", newer.id, False)
    assert build_store.desired_state(app.id).held_build_id is None
    with pytest.raises(ChangeRefused, match="not pinned"):
        build_store.unpin(app.id, "grace")


def test_after_a_rollback_automatic_advances_need_a_commit_newer_than_any_reached(build_store, app):
    builds = [pushing_build(build_store, app, n) for n in (1, 2, 4, 3)]
    one, two, four, three = builds
    for b in (one, two, four):
        succeed(build_store, b)
    back = build_store.rollback(app.id, one.id, "grace", "bad release")
    assert (back.reason, back.build_id, back.actor, back.note) == ("rollback", one.id, "grace", "bad release")
    late = succeed(build_store, three)  # commit 3 finishes late: older than commit 4, reached before the rollback
    assert not late.moved and build_store.desired_state(app.id).build_id == one.id
    five = pushing_build(build_store, app, 5)
    assert succeed(build_store, five).moved


def test_rollback_is_refused_for_builds_it_cannot_use(build_store, app):
    other = build_store.add_app("acme", "api", "https://github.com/acme/api.git", "main")
    good = pushing_build(build_store, app, 1)
    succeed(build_store, good)
    current = pushing_build(build_store, app, 2)
    succeed(build_store, current)
    foreign = pushing_build(build_store, other, 1)
    succeed(build_store, foreign, image=("127.0.0.1:5000/apps/acme/api:1", "sha256:" + "ab" * 32))
    failed = pushing_build(build_store, app, 3)
    build_store.finish(failed.id, BuildState.FAILED, "tests failed", "run:test")
    with pytest.raises(ChangeRefused, match="not a build of this app"):
        build_store.rollback(app.id, foreign.id, "grace")
    with pytest.raises(ChangeRefused, match="did not succeed"):
        build_store.rollback(app.id, failed.id, "grace")
    with pytest.raises(ChangeRefused, match="already the desired state"):
        build_store.rollback(app.id, current.id, "grace")
    build_store.mark_images_deleted(app.id, [good.id], lambda builds, history, desired: [good.id])
    with pytest.raises(ChangeRefused, match="deleted by image retention"):
        build_store.rollback(app.id, good.id, "grace")
    assert build_store.desired_state(app.id).build_id == current.id
    assert sha(1) == good.commit_sha
