"""The build state machine: the one place where legal transitions are defined and enforced."""

from __future__ import annotations

from enum import Enum

from .errors import IllegalTransition


class BuildState(str, Enum):
    WAITING = "waiting"  # held until the commit's CI check suites on GitHub have completed
    QUEUED = "queued"
    CLONING = "cloning"
    PLANNING = "planning"
    BUILDING = "building"
    PUSHING = "pushing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SUPERSEDED = "superseded"
    TIMED_OUT = "timed_out"
    CHECKS_FAILED = "checks_failed"  # a check suite of the commit did not pass: never started

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


WORKING = (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING)
TERMINAL = frozenset(
    {
        BuildState.SUCCEEDED,
        BuildState.FAILED,
        BuildState.CANCELED,
        BuildState.SUPERSEDED,
        BuildState.TIMED_OUT,
        BuildState.CHECKS_FAILED,
    }
)
# Not yet claimable: the queue hands out queued builds only.
PENDING = frozenset({BuildState.WAITING, BuildState.QUEUED})
ACTIVE = frozenset({*PENDING, *WORKING})
_ENDINGS = {BuildState.FAILED, BuildState.CANCELED, BuildState.TIMED_OUT}

TRANSITIONS: dict[BuildState, frozenset[BuildState]] = {
    BuildState.WAITING: frozenset({BuildState.QUEUED, BuildState.CHECKS_FAILED, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.QUEUED: frozenset({BuildState.CLONING, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.CLONING: frozenset({BuildState.PLANNING, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.PLANNING: frozenset({BuildState.BUILDING, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.BUILDING: frozenset({BuildState.PUSHING, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.PUSHING: frozenset({BuildState.SUCCEEDED, BuildState.SUPERSEDED, *_ENDINGS}),
    BuildState.SUCCEEDED: frozenset(),
    BuildState.CANCELED: frozenset(),
    BuildState.SUPERSEDED: frozenset(),
    BuildState.CHECKS_FAILED: frozenset(),
    # A failed or timed-out build is resumed (not restarted) when its run is re-executed from failure.
    BuildState.FAILED: frozenset(WORKING),
    BuildState.TIMED_OUT: frozenset(WORKING),
}

RESUMABLE = frozenset({BuildState.FAILED, BuildState.TIMED_OUT})


def check_transition(current: BuildState | str, target: BuildState | str, *, resume: bool = False) -> None:
    """Raise IllegalTransition unless current -> target is allowed; leaving failed needs resume=True."""
    current, target = BuildState(current), BuildState(target)
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"build cannot go from {current.value} to {target.value}")
    if current in RESUMABLE and not resume:
        raise IllegalTransition(
            f"build is {current.value}; only a re-execution of its run may resume it (to {target.value})"
        )
