"""The reconcile decision on its own: builds, their runs' states and the clock in, actions out (invariant 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starforge_dag.core.models import Build
from starforge_dag.core.reconcile import (
    AttachRun,
    CancelRun,
    EndBuild,
    ReconcileInput,
    ReleaseClaim,
    RunState,
    StopBuild,
    decide,
)
from starforge_dag.core.states import BuildState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def build(n: int, status: BuildState = BuildState.BUILDING, run_id: str | None = "run", age_s: int = 10) -> Build:
    started = NOW - timedelta(seconds=age_s)
    return Build(
        id=n,
        app_id=1,
        workspace="acme",
        app="web",
        ref="main",
        commit_sha=f"{n:040x}",
        status=status,
        trigger="push",
        run_id=None if run_id is None else f"{run_id}-{n}",
        started_at=started,
        created_at=started,
        updated_at=started,
    )


def decide_for(*builds: Build, runs: dict[str, RunState | None], **extra) -> list:
    return decide(ReconcileInput(now=NOW, timeout_s=60, active=builds, runs=runs, **extra))


def test_live_runs_within_time_need_nothing():
    assert decide_for(build(1), build(2, BuildState.QUEUED, run_id=None), runs={"run-1": RunState.ACTIVE}) == []


def test_a_vanished_run_fails_its_build():
    (action,) = decide_for(build(1), runs={"run-1": None})
    assert isinstance(action, EndBuild) and action.state == BuildState.FAILED
    assert action.reason == "its run run-1 no longer exists"


def test_a_run_that_ended_without_finishing_its_build_ends_it_for_that_run_only():
    actions = decide_for(
        build(1),
        build(2),
        build(3),
        runs={"run-1": RunState.FAILURE, "run-2": RunState.CANCELED, "run-3": RunState.SUCCESS},
    )
    assert [(a.build_id, a.state, a.only_run_id) for a in actions] == [
        (1, BuildState.FAILED, "run-1"),
        (2, BuildState.CANCELED, "run-2"),
        (3, BuildState.FAILED, "run-3"),
    ]
    assert actions[0].reason == "run run-1 ended FAILURE without finishing the build"


def test_an_overrunning_build_times_out_and_its_live_run_is_canceled():
    (action,) = decide_for(build(1, age_s=61), runs={"run-1": RunState.ACTIVE})
    assert isinstance(action, EndBuild) and action.state == BuildState.TIMED_OUT
    assert action.cancel_run_id == "run-1" and action.reason == "no result after 60s"
    (claimed,) = decide_for(build(2, BuildState.CLONING, run_id=None, age_s=61), runs={})
    assert claimed.state == BuildState.TIMED_OUT and claimed.cancel_run_id is None


def test_an_apps_own_timeout_overrides_the_platforms():
    patient = build(1, age_s=61).model_copy(update={"build_timeout_s": 600})
    hasty = build(2, age_s=31).model_copy(update={"build_timeout_s": 30})
    (action,) = decide_for(patient, hasty, runs={"run-1": RunState.ACTIVE, "run-2": RunState.ACTIVE})
    assert action.build_id == 2 and action.reason == "no result after 30s"


def test_cancel_requests_reach_only_live_runs():
    live, ended = build(1), build(2)
    actions = decide_for(
        runs={"run-1": RunState.ACTIVE, "run-2": RunState.CANCELED},
        cancel_requests=[(live, BuildState.CANCELED), (ended, BuildState.SUPERSEDED)],
    )
    assert actions == [CancelRun("run-1", "asked run run-1 of build 1 to stop (canceled)")]


def test_a_build_whose_run_is_canceling_is_asked_to_stop_once():
    # Terminated from the UI: the run is canceling, but its build knows nothing yet and would carry on.
    terminated, asked = build(1), build(2)
    actions = decide_for(
        terminated,
        asked,
        runs={"run-1": RunState.ACTIVE, "run-2": RunState.ACTIVE},
        canceling_runs=frozenset({"run-1", "run-2"}),
        cancel_requests=[(asked, BuildState.CANCELED)],
    )
    assert [a for a in actions if isinstance(a, StopBuild)] == [
        StopBuild(1, "run run-1 was terminated", "build 1: its run is canceling")
    ]


def test_stale_claims_attach_the_run_found_by_tag_or_go_back_to_the_queue():
    launched, lost = build(1, BuildState.QUEUED, run_id=None), build(2, BuildState.QUEUED, run_id=None)
    actions = decide_for(runs={}, stale_claims=[launched, lost], runs_by_build={1: "run-found"})
    assert actions[0] == AttachRun(1, "run-found")
    assert isinstance(actions[1], ReleaseClaim) and actions[1].build_id == 2
