"""Which push builds and what it supersedes, decided from facts alone (invariant 1 and the order of commits)."""

from __future__ import annotations

import pytest
from support.facts import at, build, desired, sha

from starforge_dag.core.models import App
from starforge_dag.core.pushes import (
    AskToStop,
    EndQueued,
    Enqueue,
    Join,
    PushFacts,
    ReuseImage,
    SweepFacts,
    decide_push,
    newer_commit,
    settings_key,
    sweep,
)
from starforge_dag.core.states import BuildState


def facts(commit: int = 5, trigger: str = "push", *, timed: bool = True, **known) -> PushFacts:
    return PushFacts(ref="main", sha=sha(commit), trigger=trigger, commit_time=at(commit) if timed else None, **known)


NEWER = f"superseded by build 7 of the newer commit {sha(6)[:12]}"
DESIRED_NEWER = f"superseded: desired state is already at the newer commit {sha(6)[:12]}"

PUSHES = [
    pytest.param(facts(active=build(3, 5)), Join(3), id="a push of a queued commit joins it"),
    pytest.param(
        facts(trigger="manual", active=build(3, 5)), Join(3), id="a manual build of a running commit joins it"
    ),
    pytest.param(facts(seen=build(3, 5, BuildState.SUCCEEDED)), Join(3), id="a push of a built commit adds nothing"),
    pytest.param(
        facts(seen=build(3, 5, BuildState.SUPERSEDED)), Join(3), id="a push of a superseded commit adds nothing"
    ),
    pytest.param(
        facts(trigger="manual", seen=build(3, 5, BuildState.SUCCEEDED)),
        Enqueue(at(5)),
        id="a manual build rebuilds a built commit",
    ),
    pytest.param(facts(rivals=[build(7, 4)]), Enqueue(at(5)), id="a push of a new commit builds and sweeps"),
    pytest.param(
        facts(rivals=[build(7, 6)]),
        Enqueue(at(5), behind=NEWER, sweep=False),
        id="a newer commit queued on the ref supersedes it at once",
    ),
    pytest.param(
        facts(rivals=[build(7, 6, BuildState.BUILDING)]),
        Enqueue(at(5), behind=NEWER, sweep=False),
        id="a newer commit running on the ref supersedes it at once",
    ),
    pytest.param(facts(rivals=[build(7, 6, ref="other")]), Enqueue(at(5)), id="a newer commit on another ref does not"),
    pytest.param(
        facts(rivals=[build(7, 6, BuildState.FAILED)]), Enqueue(at(5)), id="an ended build of a newer commit does not"
    ),
    pytest.param(facts(rivals=[build(7, 6, timed=False)]), Enqueue(at(5)), id="a rival of unknown time is not newer"),
    pytest.param(
        facts(timed=False, rivals=[build(7, 6)], desired=desired(7, 6)),
        Enqueue(None),
        id="a push of unknown time is never behind",
    ),
    pytest.param(
        facts(desired=desired(7, 6)),
        Enqueue(at(5), behind=DESIRED_NEWER, sweep=False),
        id="a newer desired commit supersedes it at once",
    ),
    pytest.param(facts(desired=desired(7, 4)), Enqueue(at(5)), id="an older desired commit does not"),
    pytest.param(
        facts(trigger="manual", rivals=[build(7, 6)], desired=desired(7, 6)),
        Enqueue(at(5)),
        id="a manual build is never behind",
    ),
    pytest.param(
        facts(trigger="manual", forced=True, desired=desired(7, 6)),
        Enqueue(at(5)),
        id="a forced manual build is a manual build",
    ),
]


@pytest.mark.parametrize(("known", "action"), PUSHES)
def test_which_push_builds(known, action):
    assert decide_push(known) == action


def forced(commit: int = 5, **known) -> PushFacts:
    return facts(commit, forced=True, **known)


REUSE_REWIND = f"rewind to {sha(5)[:12]} by force-push of main to {sha(5)[:12]}, reusing the image of build 2"
REUSE_BUILD = f"{sha(5)[:12]} by force-push of main to {sha(5)[:12]}, reusing the image of build 2"

FORCE_PUSHES = [
    pytest.param(
        forced(desired=desired(4, 5), active=build(9, 5)),
        Join(4, sweep=True),
        id="to the desired commit: joins its build",
    ),
    pytest.param(
        forced(desired=desired(7, 6), active=build(3, 5)),
        Join(3, rewind=True, sweep=True),
        id="to a commit building, older than desired: marks it a rewind",
    ),
    pytest.param(
        forced(desired=desired(7, 6), active=build(3, 5, rewind=True)),
        Join(3, sweep=True),
        id="to a commit building, already a rewind: leaves it",
    ),
    pytest.param(
        forced(desired=desired(7, 4), active=build(3, 5)),
        Join(3, sweep=True),
        id="to a commit building, newer than desired: no rewind",
    ),
    pytest.param(
        forced(desired=desired(7, 6), image=build(2, 5, BuildState.SUCCEEDED)),
        ReuseImage(2, "rewind", REUSE_REWIND),
        id="to a commit built with the same settings, older: reuses its image as a rewind",
    ),
    pytest.param(
        forced(image=build(2, 5, BuildState.SUCCEEDED)),
        ReuseImage(2, "build", REUSE_BUILD),
        id="to a commit built with the same settings, nothing desired: reuses its image as a build",
    ),
    pytest.param(
        forced(desired=desired(7, 6), seen=build(2, 5)),
        Enqueue(at(5), rewind=True),
        id="to an unbuilt older commit: builds it as a rewind",
    ),
    pytest.param(forced(desired=desired(7, 4)), Enqueue(at(5)), id="to an unbuilt newer commit: builds it"),
    pytest.param(
        facts(forced=True, timed=False, desired=desired(7, 4), seen=build(2, 5, BuildState.SUPERSEDED)),
        Enqueue(at(5)),
        id="of unknown time: the time seen before orders it",
    ),
    pytest.param(
        facts(forced=True, timed=False, desired=desired(7, 4)),
        Enqueue(None, rewind=True),
        id="of unknown time, never seen: a rewind",
    ),
]


@pytest.mark.parametrize(("known", "action"), FORCE_PUSHES)
def test_a_force_push_makes_its_commit_the_desired_state(known, action):
    assert decide_push(known) == action


HEAD = build(10, 5)


def swept(others, *, cancel_running=False, created=True, forced_ref=None, head=HEAD):
    return sweep(SweepFacts(head, others, cancel_running=cancel_running, created=created, forced_ref=forced_ref))


SWEEPS = [
    pytest.param(
        dict(others=[build(3, 4)]), [EndQueued(3, "superseded by build 10")], id="an older queued build of the ref ends"
    ),
    pytest.param(
        dict(others=[build(3, 4, BuildState.BUILDING)]),
        [],
        id="an older running build keeps going unless the app says so",
    ),
    pytest.param(
        dict(others=[build(3, 4, BuildState.BUILDING)], cancel_running=True),
        [AskToStop(3, "superseded by build 10")],
        id="an older running build is asked to stop when the app says so",
    ),
    pytest.param(
        dict(others=[build(3, 6), build(4, 6, BuildState.CLONING)], cancel_running=True), [], id="a newer build stays"
    ),
    pytest.param(dict(others=[build(3, 4, ref="other")]), [], id="another ref's build stays"),
    pytest.param(dict(others=[build(3, 5)]), [], id="a build of the same commit stays"),
    pytest.param(dict(others=[HEAD]), [], id="the head stays"),
    pytest.param(dict(others=[build(3, 4, BuildState.FAILED)]), [], id="an ended build stays"),
    pytest.param(
        dict(others=[build(3, 6, timed=False)]),
        [EndQueued(3, "superseded by build 10")],
        id="a build of unknown time is not newer",
    ),
    pytest.param(
        dict(others=[build(3, 6, ref="other"), build(4, 7, BuildState.PUSHING)], forced_ref="main"),
        [
            EndQueued(3, f"superseded by the force-push of main to {sha(5)[:12]} (build 10)"),
            AskToStop(4, f"superseded by the force-push of main to {sha(5)[:12]} (build 10)"),
        ],
        id="a force-push ends every other history of the app, newer or not",
    ),
    pytest.param(
        dict(others=[build(3, 6)], forced_ref="main", created=False),
        [EndQueued(3, f"superseded by the force-push of main to {sha(5)[:12]}")],
        id="a force-push to a commit it did not queue names no build",
    ),
]


@pytest.mark.parametrize(("given", "actions"), SWEEPS)
def test_what_a_push_supersedes(given, actions):
    assert swept(**given) == actions


@pytest.mark.parametrize(
    ("first", "second", "newer"),
    [(at(2), at(1), True), (at(1), at(2), False), (at(1), at(1), False), (None, at(1), False), (at(1), None, False)],
)
def test_newer_commit_only_when_both_times_are_known(first, second, newer):
    assert newer_commit(first, second) is newer


def test_an_image_is_reused_only_for_the_same_build_settings():
    app = App(id=1, workspace="acme", name="web", repo_url="https://github.com/acme/web.git")
    assert settings_key(app) == settings_key(app.model_copy(update={"branch": "dev", "cancel_running": True}))
    assert settings_key(app) != settings_key(app.model_copy(update={"dockerfile_path": "ops/Dockerfile"}))
    assert settings_key(app) != settings_key(app.model_copy(update={"root_dir": "web"}))
