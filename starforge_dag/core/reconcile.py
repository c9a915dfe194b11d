"""What to do about builds whose runs ended, vanished or overran: a pure decision, applied by the queue sensor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from .models import Build
from .states import BuildState


class RunState(str, Enum):
    """A run as reconciliation sees it (the orchestrator's many statuses folded into four)."""

    ACTIVE = "active"  # queued, starting, started or canceling
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"


# A run that ended while its build is still active did not finish the build; a successful one always ends it.
_BUILD_END = {
    RunState.FAILURE: BuildState.FAILED,
    RunState.CANCELED: BuildState.CANCELED,
    RunState.SUCCESS: BuildState.FAILED,
}


@dataclass(frozen=True)
class CancelRun:
    run_id: str
    note: str


@dataclass(frozen=True)
class AttachRun:
    build_id: int
    run_id: str


@dataclass(frozen=True)
class ReleaseClaim:
    build_id: int
    note: str


@dataclass(frozen=True)
class EndBuild:
    """End the build (if still active; a pending cancel request decides the state); then maybe cancel its run."""

    build_id: int
    state: BuildState
    reason: str
    note: str
    run_id: str | None = None
    only_run_id: str | None = None
    cancel_run_id: str | None = None


@dataclass(frozen=True)
class StopBuild:
    """Ask a running build to stop (as a user's cancel does): its run was asked to stop from outside Starforge."""

    build_id: int
    reason: str
    note: str


Action = CancelRun | AttachRun | ReleaseClaim | EndBuild | StopBuild


@dataclass(frozen=True)
class ReconcileInput:
    """Everything the decision needs, read by the caller: builds, the state of their runs, the clock."""

    now: datetime
    timeout_s: int
    active: Sequence[Build]
    runs: Mapping[str, RunState | None]  # run id → its state; None: the run does not exist
    cancel_requests: Sequence[tuple[Build, BuildState]] = ()
    stale_claims: Sequence[Build] = ()
    runs_by_build: Mapping[int, str] = field(default_factory=dict)  # a stale claim's run, found by its tag
    canceling_runs: frozenset[str] = frozenset()  # active runs asked to stop (terminated from the UI, say)


def timeout_of(build: Build, default_s: int) -> int:
    """An app's own build timeout overrides the platform's."""
    return build.build_timeout_s or default_s


def decide(state: ReconcileInput) -> list[Action]:
    """Invariant 3: no build stays active without a live run; cancel requests reach runs; lost claims return."""
    actions: list[Action] = []
    for build, stop in state.cancel_requests:
        if build.run_id and state.runs.get(build.run_id) == RunState.ACTIVE:
            actions.append(
                CancelRun(build.run_id, f"asked run {build.run_id[:8]} of build {build.id} to stop ({stop.value})")
            )
    asked = {build.id for build, _ in state.cancel_requests}
    for build in state.active:
        if build.run_id in state.canceling_runs and build.id not in asked:
            actions.append(
                StopBuild(build.id, f"run {build.run_id[:8]} was terminated", f"build {build.id}: its run is canceling")
            )
    for build in state.stale_claims:
        run_id = state.runs_by_build.get(build.id)
        if run_id:
            actions.append(AttachRun(build.id, run_id))
        else:
            actions.append(ReleaseClaim(build.id, f"build {build.id} claimed but never launched: back in the queue"))
    for build in state.active:
        if build.status in (BuildState.WAITING, BuildState.QUEUED) and build.run_id is None:
            continue
        run = state.runs.get(build.run_id) if build.run_id else None
        if build.run_id and run is None:
            actions.append(
                EndBuild(
                    build.id,
                    BuildState.FAILED,
                    f"its run {build.run_id} no longer exists",
                    f"build {build.id}: run missing",
                )
            )
        elif build.run_id and run in _BUILD_END:
            actions.append(
                EndBuild(
                    build.id,
                    _BUILD_END[run],
                    f"run {build.run_id[:8]} ended {run.value.upper()} without finishing the build",
                    f"build {build.id}: ended with its run",
                    run_id=build.run_id,
                    only_run_id=build.run_id,
                )
            )
        elif state.now - build.attempt_started_at > timedelta(seconds=(timeout := timeout_of(build, state.timeout_s))):
            actions.append(
                EndBuild(
                    build.id,
                    BuildState.TIMED_OUT,
                    f"no result after {timeout}s",
                    f"build {build.id}: timed out",
                    cancel_run_id=build.run_id if run == RunState.ACTIVE else None,
                )
            )
    return actions
