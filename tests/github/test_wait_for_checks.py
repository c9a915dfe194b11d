"""Wait for CI end to end: pushes of an app with wait_for_checks wait for the commit's check suites on the emulator,
then build (the pipeline runs them), are not built, time out, or are superseded; missed events are recovered."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.pipeline import Pipeline

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.github.checksuites import Policy, reconcile_waiting

DOCKERFILE = "FROM 127.0.0.1:5000/base/busybox:latest\nCOPY . /app\n"
CIRCLE = (3001, "circleci-checks", "CircleCI Checks")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def github_database(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_database")("starforge_checks") if request.param == "postgres" else None


def _waiting_app(world, name: str = "web"):
    linked, _ = world.linked_app(name, {"Dockerfile": DOCKERFILE, "app.sh": "echo 1\n"})
    app = world.store.update_app(linked.app.id, {"wait_for_checks": True})
    return linked, app


def _only_build(world, app_id: int):
    (build,) = world.store.list_builds(app_id=app_id)
    return build


def _reconcile(world, seconds_later: float = 0):
    policy = Policy(world.settings.checks_timeout_s, world.settings.checks_grace_s, world.emulator.app_id)
    return reconcile_waiting(
        world.store, world.gh, world.app(), policy, now=lambda: utcnow() + timedelta(seconds=seconds_later)
    )


def test_push_waits_for_every_suite_then_builds_when_all_pass(github_world, pipeline: Pipeline):
    world = github_world
    linked, app = _waiting_app(world)
    sha = world.push(linked, {"app.sh": "echo 2\n"}, "second")
    assert world.emulator.deliveries[-1].status_code == 202
    build = _only_build(world, app.id)
    assert build.status == BuildState.WAITING
    assert world.api("GET", f"/builds/{build.id}").json()["status"] == "waiting"
    assert pipeline.drain() == []  # the queue never claims a waiting build
    world.drain_statuses()
    waiting = [(s.state, s.description) for s in world.emulator.statuses_for(linked.repo.id, sha)]
    assert waiting == [("pending", "Waiting for the commit's checks")]

    actions = world.emulator.add_check_suite(linked.repo.id, sha)
    circle = world.emulator.add_check_suite(linked.repo.id, sha, app=CIRCLE, status="in_progress")
    delivery = world.emulator.complete_check_suite(actions, "success")
    assert delivery is not None and delivery.status_code == 200, delivery.status
    assert world.store.get_build(build.id).status == BuildState.WAITING  # CircleCI still runs
    world.emulator.complete_check_suite(circle, "neutral")
    assert world.store.get_build(build.id).status == BuildState.QUEUED
    transitions = world.store.transitions(build.id)
    assert [t.to_state for t in transitions] == [BuildState.WAITING, BuildState.QUEUED]
    assert transitions[-1].reason == (
        f"checks passed: check suite {actions.id} of GitHub Actions success, "
        f"check suite {circle.id} of CircleCI Checks neutral"
    )

    (result,) = pipeline.drain()
    assert result.success
    assert world.store.get_build(build.id).status == BuildState.SUCCEEDED
    world.drain_statuses()
    assert world.emulator.statuses_for(linked.repo.id, sha)[-1].state == "success"


@pytest.mark.parametrize("conclusion", ["failure", "cancelled", "timed_out", "action_required"])
def test_a_suite_that_does_not_pass_means_not_built_naming_the_suite(github_world, pipeline: Pipeline, conclusion):
    world = github_world
    linked, app = _waiting_app(world)
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    world.emulator.add_check_suite(linked.repo.id, sha, app=CIRCLE, status="in_progress")  # still running
    failing = world.emulator.add_check_suite(linked.repo.id, sha)
    world.emulator.complete_check_suite(failing, conclusion)

    build = world.store.get_build(_only_build(world, app.id).id)
    assert build.status == BuildState.CHECKS_FAILED
    assert build.error == f"not built: check suite {failing.id} of GitHub Actions concluded {conclusion}"
    assert pipeline.drain() == []  # nothing built
    assert world.store.get_build(build.id).started_at is None
    world.drain_statuses()
    last = world.emulator.statuses_for(linked.repo.id, sha)[-1]
    assert last.state == "failure" and f"check suite {failing.id} of GitHub Actions" in last.description
    page = world.api("GET", f"/builds/{build.id}").json()
    assert page["status"] == "checks_failed"
    # The reconciler leaves an ended build alone, and a redelivered push adds nothing.
    assert _reconcile(world).checked == 0
    assert world.store.get_build(build.id).status == BuildState.CHECKS_FAILED


def test_a_missed_check_suite_event_is_recovered_by_the_reconciler(github_world, pipeline: Pipeline):
    world = github_world
    linked, app = _waiting_app(world)
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    suite = world.emulator.add_check_suite(linked.repo.id, sha)
    first = _reconcile(world)
    assert first.checked == 1 and first.settled.waiting == [_only_build(world, app.id).id]

    world.emulator.drop_fraction = 1.0  # the completed event never reaches Starforge
    delivery = world.emulator.complete_check_suite(suite, "success")
    world.emulator.drop_fraction = 0.0
    assert delivery is not None and delivery.status_code == 0
    build = _only_build(world, app.id)
    assert build.status == BuildState.WAITING

    report = _reconcile(world)
    assert report.settled.queued == [build.id] and not report.settled.errors
    (result,) = pipeline.drain()
    assert result.success and world.store.get_build(build.id).status == BuildState.SUCCEEDED


def test_reconciler_under_rate_limits_and_faults_settles_every_waiting_build(github_world):
    world = github_world
    items = [_waiting_app(world, f"svc{n}") for n in range(6)]
    shas = {}
    for linked, app in items:
        shas[app.id] = world.push(linked, {"app.sh": f"echo {app.name}\n"})
        suite = world.emulator.add_check_suite(linked.repo.id, shas[app.id])
        world.emulator.complete_check_suite(suite, "success", send=False)
    world.emulator.faults.scripted = ["rate_limit", "5xx"]
    first = _reconcile(world)
    assert first.settled.errors  # the rate limit and the 5xx were met, the builds they hit still wait
    assert len(first.settled.queued) < 6
    world.emulator.faults.fail_fraction = 0.3
    for _ in range(30):
        if not world.store.waiting_builds():
            break
        _reconcile(world)
    world.emulator.faults.fail_fraction = 0.0
    assert world.store.waiting_builds() == []
    for _linked, app in items:
        assert _only_build(world, app.id).status == BuildState.QUEUED


def test_no_suite_at_all_builds_after_the_grace_period(github_world):
    world = github_world
    linked, app = _waiting_app(world)
    world.push(linked, {"app.sh": "echo 2\n"})
    build = _only_build(world, app.id)
    assert _reconcile(world).settled.waiting == [build.id]
    report = _reconcile(world, seconds_later=world.settings.checks_grace_s + 1)
    assert report.settled.queued == [build.id]
    (last,) = world.store.transitions(build.id)[-1:]
    assert "no check suite reported" in last.reason


def test_suites_still_running_at_the_timeout_end_the_build_timed_out(github_world, pipeline: Pipeline):
    world = github_world
    linked, app = _waiting_app(world)
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    suite = world.emulator.add_check_suite(linked.repo.id, sha, status="in_progress")
    assert _reconcile(world, seconds_later=world.settings.checks_timeout_s - 5).settled.waiting
    report = _reconcile(world, seconds_later=world.settings.checks_timeout_s + 1)
    build = world.store.get_build(_only_build(world, app.id).id)
    assert report.settled.timed_out == [build.id] and build.status == BuildState.TIMED_OUT
    assert build.error == (
        f"timed out waiting for checks: check suite {suite.id} of GitHub Actions still incomplete "
        f"{world.settings.checks_timeout_s}s after the push"
    )
    world.emulator.complete_check_suite(suite, "success")  # too late: nothing builds
    assert world.store.get_build(build.id).status == BuildState.TIMED_OUT
    assert pipeline.drain() == []


def test_a_newer_push_supersedes_the_waiting_build(github_world, pipeline: Pipeline):
    world = github_world
    linked, app = _waiting_app(world)
    old = world.push(linked, {"app.sh": "echo 2\n"}, "second")
    old_suite = world.emulator.add_check_suite(linked.repo.id, old)
    new = world.push(linked, {"app.sh": "echo 3\n"}, "third")
    builds = {b.commit_sha: b for b in world.store.list_builds(app_id=app.id)}
    assert builds[old].status == BuildState.SUPERSEDED
    assert builds[old].error == f"superseded by build {builds[new].id}"
    assert builds[new].status == BuildState.WAITING

    world.emulator.complete_check_suite(old_suite, "success")  # the old commit's CI passing changes nothing
    assert world.store.get_build(builds[old].id).status == BuildState.SUPERSEDED
    new_suite = world.emulator.add_check_suite(linked.repo.id, new)
    world.emulator.complete_check_suite(new_suite, "success")
    (result,) = pipeline.drain()
    assert result.success and world.store.get_build(builds[new].id).status == BuildState.SUCCEEDED


def test_manual_builds_do_not_wait_and_turning_the_setting_off_releases_waiting_builds(github_world):
    world = github_world
    linked, app = _waiting_app(world)
    manual = world.api("POST", f"/apps/acme/{app.name}/builds", json={"ref": world.head(linked)})
    assert manual.status_code in (200, 201, 202), manual.text
    assert manual.json()["build"]["status"] == "queued"  # a person's build never waits for checks
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    waiting = world.store.list_builds(app_id=app.id, statuses=[BuildState.WAITING])
    assert [b.commit_sha for b in waiting] == [sha]

    view = world.api("PATCH", f"/apps/acme/{app.name}", json={"wait_for_checks": False})
    assert view.status_code == 200 and view.json()["wait_for_checks"] is False
    assert _reconcile(world).settled.queued == [waiting[0].id]
    assert world.store.transitions(waiting[0].id)[-1].reason == "the app no longer waits for checks"
    assert world.api("GET", f"/apps/acme/{app.name}").json()["wait_for_checks"] is False


def test_when_github_cannot_list_the_suites_the_event_leaves_the_build_to_the_reconciler(github_world):
    world = github_world
    linked, app = _waiting_app(world)
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    suite = world.emulator.add_check_suite(linked.repo.id, sha)
    world.emulator.faults.scripted = ["5xx"]  # the listing the webhook asks for fails
    delivery = world.emulator.complete_check_suite(suite, "success")
    assert delivery is not None and delivery.status_code == 200, delivery.status
    build = _only_build(world, app.id)
    assert build.status == BuildState.WAITING
    assert _reconcile(world).settled.queued == [build.id]


def test_apps_of_one_repository_wait_or_build_each_by_their_own_setting(github_world):
    world = github_world
    linked, waits = _waiting_app(world)
    other = world.store.add_app("acme", "worker", linked.app.repo_url, "main", repo_full_name=linked.repo.full_name)
    world.gh.link_app(other.id, linked.repo.id, linked.repo.full_name, linked.installation_id)
    third = world.store.add_app(
        "acme", "cron", linked.app.repo_url, "main", repo_full_name=linked.repo.full_name, wait_for_checks=True
    )
    world.gh.link_app(third.id, linked.repo.id, linked.repo.full_name, linked.installation_id)
    sha = world.push(linked, {"app.sh": "echo 2\n"})
    assert _only_build(world, other.id).status == BuildState.QUEUED
    assert {_only_build(world, a.id).status for a in (waits, third)} == {BuildState.WAITING}

    suite = world.emulator.add_check_suite(linked.repo.id, sha)
    world.emulator.complete_check_suite(suite, "skipped")
    assert {_only_build(world, a.id).status for a in (waits, other, third)} == {BuildState.QUEUED}
