"""Wait for CI as a pure rule: which suites release, refuse or keep a waiting build, the grace period, the timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from starforge_dag.core.checks import GiveUp, KeepWaiting, Refuse, Release, Suite, decide, merge

PUSHED = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
OWN_APP = 4242


def _at(seconds: float) -> datetime:
    return PUSHED + timedelta(seconds=seconds)


def _decide(suites, seconds: float = 30, timeout_s: int = 7200, grace_s: int = 60):
    return decide(suites, queued_at=PUSHED, now=_at(seconds), timeout_s=timeout_s, grace_s=grace_s, own_app_id=OWN_APP)


def _done(suite_id: int, conclusion: str | None, app: str = "GitHub Actions", app_id: int = 15368) -> Suite:
    return Suite(suite_id, app, "completed", conclusion, app_id)


def _running(suite_id: int, status: str = "in_progress", app: str = "Buildkite", app_id: int = 99) -> Suite:
    return Suite(suite_id, app, status, None, app_id)


@pytest.mark.parametrize("conclusions", [["success"], ["success", "neutral", "skipped"], ["skipped"]])
def test_every_suite_passed_releases_naming_them(conclusions):
    suites = [_done(n, c) for n, c in enumerate(conclusions, 1)]
    verdict = _decide(suites)
    assert isinstance(verdict, Release)
    assert verdict.reason.startswith("checks passed: check suite 1 of GitHub Actions " + conclusions[0])


@pytest.mark.parametrize(
    "conclusion", ["failure", "cancelled", "timed_out", "action_required", "stale", "startup_failure", None]
)
def test_a_suite_that_did_not_pass_refuses_at_once_even_with_others_running(conclusion):
    suites = [_running(1), _done(2, conclusion, app="CircleCI", app_id=7)]
    verdict = _decide(suites)
    assert isinstance(verdict, Refuse)
    assert verdict.suite.id == 2
    assert verdict.reason == f"not built: check suite 2 of CircleCI concluded {conclusion or 'without a conclusion'}"


@pytest.mark.parametrize("status", ["queued", "in_progress", "requested", "waiting", "pending", ""])
def test_any_incomplete_suite_keeps_the_build_waiting_and_says_which(status):
    verdict = _decide([_done(1, "success"), _running(2, status)])
    assert isinstance(verdict, KeepWaiting)
    assert "check suite 2 of Buildkite" in verdict.reason and "check suite 1" not in verdict.reason


def test_no_suite_waits_for_the_grace_period_then_builds():
    assert isinstance(_decide([], seconds=0), KeepWaiting)
    assert isinstance(_decide([], seconds=59.9), KeepWaiting)
    verdict = _decide([], seconds=60)
    assert isinstance(verdict, Release) and "no CI" in verdict.reason
    assert isinstance(_decide([], seconds=10, grace_s=0), Release)


def test_starforges_own_suites_do_not_count():
    own_pending = Suite(5, "Starforge", "queued", None, OWN_APP)
    own_failed = Suite(6, "Starforge", "completed", "failure", OWN_APP)
    assert isinstance(_decide([own_pending, own_failed, _done(1, "success")]), Release)
    assert isinstance(_decide([own_pending], seconds=10), KeepWaiting)  # as if it had no suite: the grace applies
    assert isinstance(_decide([own_pending], seconds=61), Release)


def test_timeout_counts_from_the_push_and_only_ends_builds_still_waiting_for_a_suite():
    pending = [_done(1, "success"), _running(2)]
    assert isinstance(_decide(pending, seconds=7199), KeepWaiting)
    verdict = _decide(pending, seconds=7200)
    assert isinstance(verdict, GiveUp)
    assert verdict.reason == (
        "timed out waiting for checks: check suite 2 of Buildkite still incomplete 7200s after the push"
    )
    # Past the timeout a verdict that is in still counts: passed builds, a failure refuses.
    assert isinstance(_decide([_done(1, "success")], seconds=9000), Release)
    assert isinstance(_decide([_running(2), _done(3, "failure")], seconds=9000), Refuse)


def test_merge_updates_the_listing_with_newer_events_but_never_undoes_a_completion():
    listed = [_running(1), _done(2, "success")]
    newer = [_done(1, "failure", app="Buildkite", app_id=99), _running(2), _running(3)]
    merged = merge(listed, newer)
    assert [(s.id, s.status, s.conclusion) for s in merged] == [
        (1, "completed", "failure"),
        (2, "completed", "success"),
        (3, "in_progress", None),
    ]
