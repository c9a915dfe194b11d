"""When desired state moves, is held or keeps its image, and which operator changes are refused (invariants 2, 9)."""

from __future__ import annotations

import pytest
from support.facts import T0, at, build, desired, sha

from starforge_dag.core.desired import (
    AdvanceFacts,
    Hold,
    Keep,
    Mark,
    Move,
    Refuse,
    decide_advance,
    decide_pin,
    decide_rollback,
    decide_unpin,
    order_key,
    sets_mark,
)
from starforge_dag.core.states import BuildState

SUCCEEDED = BuildState.SUCCEEDED


def advance(build_id: int, commit: int) -> Move:
    return Move(build_id, "build", f"build {build_id} of {sha(commit)[:12]}")


def rewind(build_id: int, commit: int) -> Move:
    return Move(build_id, "rewind", f"rewind to {sha(commit)[:12]} (force-push, build {build_id})", as_requester=True)


ADVANCES = [
    pytest.param(AdvanceFacts(build(3, 5), None), advance(3, 5), id="the first image is desired"),
    pytest.param(AdvanceFacts(build(3, 5), desired(2, 4)), advance(3, 5), id="a newer commit moves it"),
    pytest.param(AdvanceFacts(build(3, 4), desired(2, 5)), Keep(), id="an older commit finishing late keeps it"),
    pytest.param(AdvanceFacts(build(3, 5), desired(2, 5)), advance(3, 5), id="the same commit rebuilt later moves it"),
    pytest.param(AdvanceFacts(build(2, 5), desired(3, 5)), Keep(), id="the same commit built earlier keeps it"),
    pytest.param(AdvanceFacts(build(9, 5, timed=False), desired(2, 4)), Keep(), id="a commit of unknown time keeps it"),
    pytest.param(
        AdvanceFacts(build(4, 5), desired(2, 3), Mark(3, at(6))),
        Keep(),
        id="after a rollback, only a commit past the mark moves it",
    ),
    pytest.param(
        AdvanceFacts(build(4, 7), desired(2, 3), Mark(3, at(6))), advance(4, 7), id="a commit past the mark moves it"
    ),
    pytest.param(AdvanceFacts(build(5, 2, rewind=True), desired(4, 6)), rewind(5, 2), id="a rewind moves it backwards"),
    pytest.param(
        AdvanceFacts(build(3, 2, rewind=True), desired(4, 6)),
        Keep(),
        id="a rewind queued before the desired build keeps it",
    ),
    pytest.param(
        AdvanceFacts(build(5, 2, rewind=True), desired(4, 6, pinned=True, held=6)),
        Keep(),
        id="a rewind queued before a held build keeps it",
    ),
    pytest.param(
        AdvanceFacts(build(5, 2, rewind=True), desired(5, 2), Mark(4, at(6))),
        Keep(),
        id="a rewind moves it backwards only once",
    ),
    pytest.param(AdvanceFacts(build(3, 5), desired(2, 4, pinned=True)), Hold(3), id="a pin holds a newer commit"),
    pytest.param(
        AdvanceFacts(build(5, 2, rewind=True), desired(4, 6, pinned=True)), Hold(5), id="a pin holds a rewind"
    ),
    pytest.param(AdvanceFacts(build(3, 4), desired(2, 5, pinned=True)), Keep(), id="a pin keeps an older commit out"),
]


@pytest.mark.parametrize(("facts", "action"), ADVANCES)
def test_when_desired_state_moves(facts, action):
    assert decide_advance(facts) == action


def test_commits_of_unknown_time_order_before_known_ones_then_by_build():
    assert order_key(None, 9) < order_key(at(0), 1) < order_key(at(0), 2) < order_key(at(1), 1)


@pytest.mark.parametrize(
    ("reason", "first", "sets"),
    [
        ("build", False, True),
        ("rewind", False, True),
        ("rollback", False, False),
        ("pin", False, False),
        ("unpin", False, False),
        ("rollback", True, True),
    ],
)
def test_only_automatic_changes_and_the_first_one_set_the_mark(reason, first, sets):
    assert sets_mark(reason, first) is sets


ROLLBACKS = [
    pytest.param(7, None, None, Refuse("build 7 is not a build of this app"), id="no such build"),
    pytest.param(
        7, build(7, 3, SUCCEEDED, app_id=2), None, Refuse("build 7 is not a build of this app"), id="another app's"
    ),
    pytest.param(
        7,
        build(7, 3, BuildState.FAILED),
        None,
        Refuse("build 7 did not succeed (failed); only succeeded builds have images"),
        id="a failed build",
    ),
    pytest.param(
        7,
        build(7, 3, SUCCEEDED, deleted=True),
        None,
        Refuse(
            f"the image of build 7 was deleted by image retention at {T0.isoformat()}; "
            "roll back to a build whose image is kept"
        ),
        id="an image retention deleted",
    ),
    pytest.param(
        7,
        build(7, 3, SUCCEEDED),
        desired(7, 3),
        Refuse("build 7 is already the desired state of acme/web"),
        id="the build already desired",
    ),
    pytest.param(
        7,
        build(7, 3, SUCCEEDED),
        desired(8, 4),
        Move(7, "rollback", f"rollback to build 7 of {sha(3)[:12]}"),
        id="backwards",
    ),
    pytest.param(
        7, build(7, 3, SUCCEEDED), None, Move(7, "rollback", f"rollback to build 7 of {sha(3)[:12]}"), id="unchecked"
    ),
]


@pytest.mark.parametrize(("build_id", "target", "current", "action"), ROLLBACKS)
def test_which_rollbacks_are_refused(build_id, target, current, action):
    assert decide_rollback(1, build_id, target, current) == action


def test_a_rollback_keeps_the_operators_note():
    assert decide_rollback(1, 7, build(7, 3, SUCCEEDED), desired(8, 4), "bad release") == Move(
        7, "rollback", "bad release"
    )


def test_a_build_without_an_image_cannot_be_rolled_back_to():
    imageless = build(7, 3, SUCCEEDED).model_copy(update={"image_digest": None})
    assert decide_rollback(1, 7, imageless, None) == Refuse(
        "build 7 did not succeed (succeeded); only succeeded builds have images"
    )


PINS = [
    pytest.param(None, Refuse("nothing to pin: the app has no desired state yet"), id="nothing desired"),
    pytest.param(desired(3, 5, pinned=True), Refuse("acme/web is already pinned (revision 4)"), id="already pinned"),
    pytest.param(
        desired(3, 5), Move(3, "pin", f"pinned to build 3 of {sha(5)[:12]}", pinned=True), id="holds the current build"
    ),
]


@pytest.mark.parametrize(("current", "action"), PINS)
def test_a_pin_holds_the_current_image(current, action):
    assert decide_pin(current) == action


HELD_NOTE = f"unpinned; moves to held build 6 of {sha(8)[:12]}"
AT_NOTE = f"unpinned at build 3 of {sha(5)[:12]}"

UNPINS = [
    pytest.param(None, None, Refuse("the app is not pinned"), id="nothing desired"),
    pytest.param(desired(3, 5), None, Refuse("the app is not pinned"), id="not pinned"),
    pytest.param(
        desired(3, 5, pinned=True, held=6),
        build(6, 8),
        Move(6, "unpin", HELD_NOTE, pinned=False),
        id="moves to the held build",
    ),
    pytest.param(
        desired(3, 5, pinned=True, held=6),
        build(6, 8, deleted=True),
        Move(3, "unpin", AT_NOTE, pinned=False),
        id="stays when the held image was deleted",
    ),
    pytest.param(desired(3, 5, pinned=True), None, Move(3, "unpin", AT_NOTE, pinned=False), id="stays when none held"),
    pytest.param(
        desired(3, 5, pinned=True, held=3),
        build(3, 5),
        Move(3, "unpin", AT_NOTE, pinned=False),
        id="stays when the held build is the desired one",
    ),
]


@pytest.mark.parametrize(("current", "held", "action"), UNPINS)
def test_an_unpin_releases_the_newest_held_build(current, held, action):
    assert decide_unpin(current, held) == action


def test_operator_notes_replace_the_default_ones():
    assert decide_pin(desired(3, 5), "freeze") == Move(3, "pin", "freeze", pinned=True)
    assert decide_unpin(desired(3, 5, pinned=True, held=6), build(6, 8), "thaw") == Move(
        6, "unpin", "thaw", pinned=False
    )
