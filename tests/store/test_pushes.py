"""Which pushes build, which supersede, how a force-push rewinds, and the one-transaction success (issue 7)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from support.facts import at, sha

from starforge_dag.core.models import App, Build
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore
from starforge_dag.store.schema import apps as apps_table

_deliveries = iter(range(1_000_000))


def push(store: BuildStore, app: App, n: int, *, forced: bool = False, actor: str = "ada") -> tuple[Build, bool]:
    """One delivery of a push of commit n to main; returns its build and whether the delivery created it."""
    outcome = store.record_delivery(
        f"delivery-{next(_deliveries)}", "push", [(app, "main", sha(n))], actor=actor, commit_time=at(n), forced=forced
    )
    (build,) = outcome.builds
    return build, build.id in outcome.created


def run_to_pushing(store: BuildStore, build_id: int) -> None:
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build_id, state, state.value, "run:test")


def build_and_succeed(store: BuildStore, build_id: int) -> bool:
    """Carry a build to success through `succeed`; returns whether desired state moved to it."""
    run_to_pushing(store, build_id)
    outcome = store.succeed(build_id, f"r/app:{build_id}", f"sha256:{build_id:064x}", "image pushed", "run:test")
    assert outcome.build.status == BuildState.SUCCEEDED
    return outcome.moved


@pytest.fixture
def app(build_store: BuildStore) -> App:
    return build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main")


def test_a_commit_already_queued_built_or_superseded_is_never_queued_again(build_store, app):
    first, created = push(build_store, app, 1)
    assert created
    assert push(build_store, app, 1) == (first, False)  # queued
    build_and_succeed(build_store, first.id)
    again, created = push(build_store, app, 1)  # built
    assert (again.id, created) == (first.id, False)
    second, _ = push(build_store, app, 2)
    third, _ = push(build_store, app, 3)
    assert build_store.get_build(second.id).status == BuildState.SUPERSEDED
    assert push(build_store, app, 2)[0].id == second.id  # superseded
    assert sorted(b.commit_sha for b in build_store.list_builds(app_id=app.id)) == [sha(1), sha(2), sha(3)]
    assert build_store.get_build(third.id).status == BuildState.QUEUED


def test_an_older_commit_arriving_late_never_supersedes_the_newer_one(build_store, app):
    newer, _ = push(build_store, app, 5)
    older, created = push(build_store, app, 4)
    assert not created
    assert build_store.get_build(newer.id).status == BuildState.QUEUED
    late = build_store.get_build(older.id)
    assert late.status == BuildState.SUPERSEDED
    assert late.error == f"superseded by build {newer.id} of the newer commit {sha(5)[:12]}"


def test_order_is_commit_time_not_build_id_even_for_running_builds(build_store):
    app = build_store.add_app("acme", "eager", "https://github.com/acme/eager.git", "main", cancel_running=True)
    newer, _ = push(build_store, app, 9)
    build_store.transition(newer.id, BuildState.CLONING, "go", "run:test")
    push(build_store, app, 8)
    assert build_store.cancel_state(newer.id) is None
    newest, created = push(build_store, app, 10)
    assert created and build_store.cancel_state(newer.id) == BuildState.SUPERSEDED
    assert build_store.get_build(newer.id).error == f"superseded by build {newest.id}"


def test_a_commit_older_than_desired_state_is_not_built(build_store, app):
    built, _ = push(build_store, app, 3)
    build_and_succeed(build_store, built.id)
    late, created = push(build_store, app, 2)
    assert not created and build_store.get_build(late.id).status == BuildState.SUPERSEDED
    assert "desired state is already at the newer commit" in (build_store.get_build(late.id).error or "")
    assert build_store.desired_state(app.id).commit_sha == sha(3)


def test_a_manual_build_rebuilds_a_built_commit(build_store, app):
    built, _ = push(build_store, app, 1)
    build_and_succeed(build_store, built.id)
    manual = build_store.enqueue(app, "main", sha(1), trigger="manual", actor="cli")
    assert manual.created and manual.build.id != built.id


def test_force_push_back_to_a_built_commit_reuses_its_image_as_a_recorded_rewind(build_store, app):
    old, _ = push(build_store, app, 1)
    build_and_succeed(build_store, old.id)
    new, _ = push(build_store, app, 2)
    build_and_succeed(build_store, new.id)
    count = len(build_store.list_builds(app_id=app.id))

    head, created = push(build_store, app, 1, forced=True, actor="grace")

    assert not created and head.id == old.id and len(build_store.list_builds(app_id=app.id)) == count
    desired = build_store.desired_state(app.id)
    assert (desired.commit_sha, desired.build_id, desired.image_digest) == (sha(1), old.id, f"sha256:{old.id:064x}")
    assert desired.actor == "grace" and desired.reason == "rewind"
    assert desired.note.startswith(f"rewind to {sha(1)[:12]} by force-push of main")


def test_force_push_back_to_an_unbuilt_commit_builds_it_and_moves_desired_state_back_once(build_store, app):
    skipped, _ = push(build_store, app, 1)
    latest, _ = push(build_store, app, 2)  # supersedes commit 1 before it was built
    build_and_succeed(build_store, latest.id)

    rewind, created = push(build_store, app, 1, forced=True, actor="grace")

    assert created and rewind.id not in (skipped.id, latest.id) and rewind.rewind
    assert build_store.desired_state(app.id).commit_sha == sha(2)  # nothing moves until the image exists
    assert build_and_succeed(build_store, rewind.id)
    desired = build_store.desired_state(app.id)
    assert desired.commit_sha == sha(1) and desired.build_id == rewind.id
    assert desired.reason == "rewind" and desired.note.startswith("rewind to") and desired.actor == "grace"
    assert not push(build_store, app, 2)[1]  # a late redelivery of the newer commit does not undo the rewind
    following, created = push(build_store, app, 3)
    assert created and build_and_succeed(build_store, following.id)
    assert build_store.desired_state(app.id).commit_sha == sha(3)


def test_force_push_rebuilds_when_the_build_settings_changed(build_store, app):
    old, _ = push(build_store, app, 1)
    build_and_succeed(build_store, old.id)
    new, _ = push(build_store, app, 2)
    build_and_succeed(build_store, new.id)
    with build_store.engine.begin() as conn:
        conn.execute(sa.update(apps_table).where(apps_table.c.id == app.id).values(dockerfile_path="ops/Dockerfile"))
    moved_app = build_store.get_app_by_id(app.id)

    rebuild, created = push(build_store, moved_app, 1, forced=True)

    assert created and rebuild.id != old.id
    assert build_store.desired_state(app.id).commit_sha == sha(2)


def test_force_push_stops_builds_of_the_abandoned_history(build_store, app):
    old, _ = push(build_store, app, 1)
    build_and_succeed(build_store, old.id)
    abandoned, _ = push(build_store, app, 2)
    run_to_pushing(build_store, abandoned.id)
    queued, _ = push(build_store, app, 3)

    push(build_store, app, 1, forced=True)

    assert build_store.get_build(queued.id).status == BuildState.SUPERSEDED
    assert build_store.cancel_state(abandoned.id) == BuildState.SUPERSEDED
    outcome = build_store.succeed(abandoned.id, "r/app:2", "sha256:" + "2" * 64, "image pushed", "run:test")
    assert outcome.build.status == BuildState.SUPERSEDED and not outcome.moved
    assert "superseded by the force-push of main" in (outcome.build.error or "")
    assert build_store.desired_state(app.id).commit_sha == sha(1)


def _refuse_success(store: BuildStore) -> None:
    """A real database trigger that makes the last write of `succeed` fail, as a crash between writes would."""
    with store.engine.begin() as conn:
        if store.is_postgres:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_success() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_success BEFORE INSERT ON build_transitions FOR EACH ROW "
                    "WHEN (NEW.to_state = 'succeeded') EXECUTE FUNCTION refuse_success()"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_success BEFORE INSERT ON build_transitions "
                    "WHEN NEW.to_state = 'succeeded' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )


def test_success_is_one_transaction_image_desired_state_and_status_or_nothing(build_store, app):
    build, _ = push(build_store, app, 1)
    run_to_pushing(build_store, build.id)
    _refuse_success(build_store)

    with pytest.raises(sa.exc.DatabaseError, match="refused"):
        build_store.succeed(build.id, "r/app:1", "sha256:" + "1" * 64, "image pushed", "run:test")

    left = build_store.get_build(build.id)
    assert left.status == BuildState.PUSHING and left.image_digest is None
    assert build_store.desired_state(app.id) is None
    with build_store.engine.begin() as conn:
        conn.execute(
            sa.text("DROP TRIGGER refuse_success" + (" ON build_transitions" if build_store.is_postgres else ""))
        )
    first = build_store.succeed(build.id, "r/app:1", "sha256:" + "1" * 64, "image pushed", "run:test")
    again = build_store.succeed(build.id, "r/app:1", "sha256:" + "1" * 64, "image pushed", "run:test")
    assert first.moved and again.moved and again.build.status == BuildState.SUCCEEDED
    assert [t.to_state for t in build_store.transitions(build.id)].count(BuildState.SUCCEEDED) == 1


def test_the_first_recorded_stop_reason_wins(build_store, app):
    build, _ = push(build_store, app, 1)
    build_store.transition(build.id, BuildState.CLONING, "go", "run:test")
    build_store.request_cancel(build.id, actor="ada", reason="stop it")
    build_store.request_cancel(build.id, actor="bob", reason="no, stop it for my reason")
    ended = build_store.finish(build.id, BuildState.CANCELED, "build canceled during [2/4] RUN make", "run:test")
    assert ended.status == BuildState.CANCELED and ended.error == "stop it"
    assert build_store.transitions(build.id)[-1].reason == "stop it"

    superseded, _ = push(
        build_store, build_store.add_app("acme", "eager", "https://x.invalid/a/e.git", cancel_running=True), 2
    )
    build_store.transition(superseded.id, BuildState.CLONING, "go", "run:test")
    newer, _ = push(build_store, build_store.get_app("acme/eager"), 3)
    build_store.request_cancel(superseded.id, actor="ada", reason="stop it")
    ended = build_store.finish(superseded.id, BuildState.FAILED, "run ended FAILURE", "sensor")
    assert ended.status == BuildState.SUPERSEDED and ended.error == f"superseded by build {newer.id}"
