"""Commit statuses through the outbox: right state per build state, in order per commit, nothing lost under faults."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.github.statuses import SendReport, StatusStyle, commit_status, send_statuses

TERMINAL_RANK = {"success", "failure", "error"}


def test_each_build_state_has_its_github_state():
    assert commit_status(BuildState.QUEUED)[0] == "pending"
    assert commit_status(BuildState.BUILDING)[0] == "pending"
    assert commit_status(BuildState.SUCCEEDED)[0] == "success"
    assert commit_status(BuildState.FAILED, "npm ci exited 1") == ("failure", "Build failed: npm ci exited 1")
    for state in (BuildState.CANCELED, BuildState.SUPERSEDED, BuildState.TIMED_OUT):
        assert commit_status(state)[0] == "error"
    assert len(commit_status(BuildState.FAILED, "x" * 500)[1]) == 140


def test_an_explanation_replaces_the_raw_error_and_still_fits_140_characters():
    error = "executor failed running [/bin/sh -c npm ci]: exit code: 1"
    assert commit_status(BuildState.FAILED, error, "npm could not install left-padx") == (
        "failure",
        "Build failed: npm could not install left-padx",
    )
    assert commit_status(BuildState.CANCELED, "", "Canceled by ada: wrong branch") == (
        "error",
        "Build canceled: Canceled by ada: wrong branch",
    )
    assert len(commit_status(BuildState.TIMED_OUT, "", "y" * 300)[1]) == 140
    assert commit_status(BuildState.SUCCEEDED, "", "ignored") == ("success", "Image built and pushed")


def test_a_failed_build_s_status_explains_it_and_links_its_page(github_world):
    from starforge_dag.core.models import LogLine
    from starforge_dag.logs import open_log_store

    world = github_world
    linked, sha = world.linked_app("web")
    build = world.store.enqueue(linked.app, "main", sha).build
    with open_log_store(world.settings.log_store_dsn, world.settings.resolved_database_url) as logs:
        logs.append(
            [LogLine(build_id=build.id, seq=0, stream="stderr", text="dd: error writing: No space left on device")]
        )
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING):
        world.store.transition(build.id, state, state.value, "test")
    world.store.finish(build.id, BuildState.FAILED, "executor failed running [/bin/sh -c dd]: exit code: 1", "test")

    world.drain_statuses()

    final = world.emulator.statuses_for(linked.repo.id, sha)[-1]
    assert (final.state, final.description) == ("failure", "Build failed: The builder ran out of disk space")
    token = final.target_url.removeprefix("https://starforge.example.invalid/page/")
    assert world.settings.page_links().build_of(token, utcnow()) == build.id


def _run_build(store, build_id: int, outcome: BuildState) -> None:
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build_id, state, state.value, "test", run_id=f"run-{build_id}")
        time.sleep(0.01)
    store.finish(build_id, outcome, f"ended {outcome.value}", "test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def github_database(request: pytest.FixtureRequest) -> str | None:
    """This module's store: SQLite, and a fresh Postgres database for the concurrent case."""
    return request.getfixturevalue("postgres_database")("starforge_gh") if request.param == "postgres" else None


def test_20_concurrent_builds_get_their_final_status_in_order_while_github_fails_30_percent(github_world):
    world = github_world
    world.emulator.faults.fail_fraction = 0.3
    world.emulator.faults.kinds = ("5xx", "rate_limit")
    linked, _ = world.linked_app("mono")
    apps = [linked.app] + [
        world.store.add_app("acme", f"svc{n}", linked.app.repo_url, "main", repo_full_name=linked.repo.full_name)
        for n in range(1, 20)
    ]
    for app in apps[1:]:
        world.gh.link_app(app.id, linked.repo.id, linked.repo.full_name, linked.installation_id)
    shas = [linked.git.commit({"n": str(n)}, f"commit {n}") for n in range(20)]
    outcomes = [(BuildState.SUCCEEDED, BuildState.FAILED, BuildState.CANCELED)[n % 3] for n in range(20)]
    builds = [world.store.enqueue(app, "main", sha).build.id for app, sha in zip(apps, shas)]

    stop = threading.Event()
    style = StatusStyle("starforge", None, None)

    reports: list[SendReport] = []

    def sender() -> None:
        while not stop.is_set():
            reports.append(send_statuses(world.gh, world.app(), style, utcnow))
            time.sleep(0.02)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        with ThreadPoolExecutor(20) as pool:
            for n, build_id in enumerate(builds):
                if outcomes[n] == BuildState.CANCELED:
                    pool.submit(world.store.request_cancel, build_id, "test")
                else:
                    pool.submit(_run_build, world.store, build_id, outcomes[n])
    finally:
        stop.set()
        thread.join()
    reports += world.drain_statuses(deadline_s=120)

    faults = [r for r in world.emulator.requests if r[2] in (403, 429, 502)]
    assert len(faults) >= 5  # the faults really happened
    assert sum(r.given_up for r in reports) == 0  # no status failed or was dropped
    assert world.gh.unsent(1) == []
    expected = {BuildState.SUCCEEDED: "success", BuildState.FAILED: "failure", BuildState.CANCELED: "error"}
    for app, sha, outcome in zip(apps, shas, outcomes):
        seen = [
            s for s in world.emulator.statuses_for(linked.repo.id, sha) if s.context == f"starforge/acme/{app.name}"
        ]
        assert seen, f"no status for {app.name}"
        assert seen[-1].state == expected[outcome]
        first_final = next(i for i, s in enumerate(seen) if s.state in TERMINAL_RANK)
        assert first_final == len(seen) - 1, f"{app.name}: a status arrived after the final one: {seen}"


def test_statuses_wait_while_github_rate_limits_and_follow_retry_after(github_world):
    world = github_world
    linked, sha = world.linked_app("slow")
    build = world.store.enqueue(linked.app, "main", sha).build
    world.store.request_cancel(build.id, "test")
    world.emulator.faults.retry_after_s = 30
    world.emulator.faults.scripted = ["rate_limit"]
    report = send_statuses(world.gh, world.app(), StatusStyle(), utcnow)
    assert report.skipped == 1 and report.deferred == 1 and report.sent == 0
    (row,) = world.gh.unsent(10)
    assert (row.next_attempt_at - utcnow()).total_seconds() > 20  # waits out retry-after, not a short backoff
    assert send_statuses(world.gh, world.app(), StatusStyle(), utcnow).sent == 0
    assert world.emulator.statuses_for(linked.repo.id, sha) == []


def test_a_pass_stops_calling_github_at_its_deadline_and_the_next_sends_the_rest(github_world):
    world = github_world
    linked = [world.linked_app(name)[0] for name in ("one", "two", "three")]
    for item in linked:
        world.store.enqueue(item.app, "main", world.head(item))
    clock = itertools.count().__next__  # each look at the clock is one second later

    report = send_statuses(world.gh, world.app(), StatusStyle(), utcnow, workers=1, deadline=2, clock=clock)

    assert (report.sent, report.left) == (2, 1) and "left 1 for the next pass" in str(report)
    assert len(world.gh.unsent(10)) == 1
    assert send_statuses(world.gh, world.app(), StatusStyle(), utcnow).sent == 1
    assert all(len(world.emulator.statuses_for(item.repo.id, world.head(item))) == 1 for item in linked)
