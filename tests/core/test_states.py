"""The build state machine: legal moves pass, illegal ones raise, only re-execution resumes."""

import pytest

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.core.states import TERMINAL, TRANSITIONS, BuildState, check_transition

HAPPY_PATH = ["queued", "cloning", "planning", "building", "pushing", "succeeded"]


def test_happy_path_is_legal():
    for current, target in zip(HAPPY_PATH, HAPPY_PATH[1:]):
        check_transition(current, target)


@pytest.mark.parametrize("current", [s for s in BuildState if not s.terminal])
@pytest.mark.parametrize("ending", ["failed", "canceled", "superseded", "timed_out"])
def test_every_active_state_can_end(current, ending):
    check_transition(current, ending)


@pytest.mark.parametrize(
    "current,target",
    [
        ("queued", "building"),
        ("cloning", "succeeded"),
        ("pushing", "queued"),
        ("succeeded", "failed"),
        ("canceled", "cloning"),
        ("superseded", "queued"),
        ("queued", "succeeded"),
    ],
)
def test_illegal_moves_raise(current, target):
    with pytest.raises(IllegalTransition, match=f"from {current} to {target}"):
        check_transition(current, target)


@pytest.mark.parametrize("current", ["failed", "timed_out"])
def test_failed_builds_resume_only_through_re_execution(current):
    with pytest.raises(IllegalTransition, match="re-execution"):
        check_transition(current, "building")
    check_transition(current, "building", resume=True)
    with pytest.raises(IllegalTransition):
        check_transition(current, "succeeded", resume=True)


def test_succeeded_canceled_superseded_and_checks_failed_are_final():
    for state in ("succeeded", "canceled", "superseded", "checks_failed"):
        assert TRANSITIONS[BuildState(state)] == frozenset()
    assert {s.value for s in TERMINAL} == {
        "succeeded",
        "failed",
        "canceled",
        "superseded",
        "timed_out",
        "checks_failed",
    }
