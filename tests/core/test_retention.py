"""Image retention's plan over many generated histories: never a desired image, exactly what the policy allows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from starforge_dag.core.feed import RunProgress, changes_to_report
from starforge_dag.core.models import Build, DesiredChange, DesiredState
from starforge_dag.core.retention import RetentionPolicy, plan_retention, repository_of
from starforge_dag.core.states import BuildState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
REPO = "127.0.0.1:5000/apps/acme/web"


def _history(seed: int):
    """A random app: builds over 60 days (some reproducing an earlier digest), and desired-state changes."""
    rng = random.Random(seed)
    builds: list[Build] = []
    changes: list[DesiredChange] = []
    at = NOW - timedelta(days=60)
    for build_id in range(1, rng.randint(1, 40) + 1):
        at += timedelta(hours=rng.uniform(0.1, 60))
        if at > NOW:
            break
        digest = f"sha256:{rng.randint(1, build_id):064x}" if rng.random() < 0.15 else f"sha256:{1000 + build_id:064x}"
        builds.append(
            Build(
                id=build_id,
                app_id=1,
                workspace="acme",
                app="web",
                ref="main",
                commit_sha=f"{build_id:040x}",
                status=BuildState.SUCCEEDED,
                trigger="push",
                image_ref=f"{REPO}:{build_id:040x}",
                image_digest=digest,
                created_at=at,
                updated_at=at,
            )
        )
        target = builds[-1] if rng.random() < 0.7 or len(builds) == 1 else rng.choice(builds)
        reason = "build" if target is builds[-1] else rng.choice(["rollback", "pin", "unpin"])
        changes.append(
            DesiredChange(
                revision=len(changes) + 1,
                app_id=1,
                workspace="acme",
                app="web",
                build_id=target.id,
                image_ref=target.image_ref or "",
                image_digest=target.image_digest or "",
                commit_sha=target.commit_sha,
                reason=reason,
                note="",
                actor="test",
                pinned=False,
                at=at,
            )
        )
    held = rng.choice(builds).id if builds and rng.random() < 0.2 else None
    last = changes[-1] if changes else None
    desired = (
        None
        if last is None
        else DesiredState(
            app_id=1,
            workspace="acme",
            app="web",
            image_ref=last.image_ref,
            image_digest=last.image_digest,
            commit_sha=last.commit_sha,
            commit_time=None,
            build_id=last.build_id,
            updated_at=last.at,
            held_build_id=held,
        )
    )
    policy = RetentionPolicy(keep_builds=rng.randint(1, 6), keep_days=rng.choice([0, 1, 3, 7, 30]))
    return builds, changes, desired, policy


def _desired_at(changes: list[DesiredChange], moment: datetime) -> str | None:
    """Which digest was desired at a moment (the last change at or before it)."""
    digest = None
    for change in changes:
        if change.at <= moment:
            digest = change.image_digest
    return digest


@pytest.mark.parametrize("seed", range(400))
def test_retention_never_deletes_a_desired_image_and_deletes_all_else_beyond_policy(seed: int):
    builds, changes, desired, policy = _history(seed)
    plan = plan_retention(builds, changes, desired, policy, NOW)
    doomed = {d.digest for d in plan}
    cutoff = NOW - timedelta(days=policy.keep_days)
    # never: an image desired at any moment of the window (checked at every change and at the cutoff), now, or held
    moments = [cutoff, NOW] + [c.at for c in changes if c.at >= cutoff]
    assert not doomed & {_desired_at(changes, m) for m in moments}
    if desired is not None:
        assert desired.image_digest not in doomed
        held = next((b for b in builds if b.id == desired.held_build_id), None)
        assert held is None or held.image_digest not in doomed
    newest = sorted(builds, key=lambda b: b.id)[-policy.keep_builds :]
    assert not doomed & {b.image_digest for b in newest}
    # and exactly: every other image is deleted, with all of its builds
    for build in builds:
        kept = (
            build in newest
            or (desired is not None and build.image_digest == desired.image_digest)
            or any(_desired_at(changes, m) == build.image_digest for m in moments)
            or (
                desired is not None
                and any(b.id == desired.held_build_id and b.image_digest == build.image_digest for b in builds)
            )
            or any(b.image_digest == build.image_digest for b in newest)
        )
        assert (build.image_digest in doomed) == (not kept), (seed, build.id)
    for deletion in plan:
        assert deletion.repository == REPO
        assert set(deletion.build_ids) == {b.id for b in builds if b.image_digest == deletion.digest}


def test_retention_keeps_at_least_one_build():
    with pytest.raises(ValueError):
        RetentionPolicy(keep_builds=0, keep_days=7)


def test_repository_of_strips_the_tag_or_digest_but_not_the_port():
    assert repository_of("127.0.0.1:5000/apps/a/b:abc") == "127.0.0.1:5000/apps/a/b"
    assert repository_of("127.0.0.1:5000/apps/a/b@sha256:00") == "127.0.0.1:5000/apps/a/b"


def _change(revision: int, run_id: str | None) -> DesiredChange:
    return DesiredChange(
        revision=revision,
        app_id=1,
        workspace="acme",
        app="web",
        build_id=revision,
        image_ref=f"{REPO}:x",
        image_digest="sha256:" + "0" * 64,
        commit_sha="0" * 40,
        reason="build" if run_id else "rollback",
        note="",
        actor="t",
        pinned=False,
        at=NOW,
    ).model_copy(update={"run_id": run_id})


def test_changes_outside_runs_are_reported_once_and_a_running_run_holds_the_cursor():
    changes = [_change(1, None), _change(2, "done"), _change(3, "crashed"), _change(4, None), _change(5, "busy")]
    runs = {"done": RunProgress.ENDED, "crashed": RunProgress.ENDED, "busy": RunProgress.RUNNING}
    report, cursor = changes_to_report(changes, runs, materialized={2})
    assert [c.revision for c in report] == [1, 3, 4] and cursor == 4
    report, cursor = changes_to_report(changes[4:], {"busy": RunProgress.ENDED}, materialized={5})
    assert report == [] and cursor == 5
    assert changes_to_report([_change(6, "gone")], {}, materialized=set())[0][0].revision == 6


def test_generated_histories_exercise_deletion():
    """The generator is not vacuous: most histories delete something, and some builds share a digest."""
    with_deletions = sum(bool(plan_retention(*_history(s)[:3], _history(s)[3], NOW)) for s in range(400))
    assert with_deletions > 200
