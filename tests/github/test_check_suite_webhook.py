"""Hostile `check_suite` deliveries: a clear 4xx or recorded-and-ignored, never a 500, never a build released or
refused; a valid one is processed once per delivery id."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.deliveries import GitHub

from starforge_dag.api import create_app
from starforge_dag.core.states import BuildState
from starforge_dag.emulators.github.checks import suite_payload

SECRET = "emulated-webhook-secret"  # the github_world's


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change


BAD_REQUEST = {
    "missing head_sha": _set("check_suite.head_sha", KeyError),
    "missing check_suite": _set("check_suite", KeyError),
    "missing repository": _set("repository", KeyError),
    "suite id as a string": _set("check_suite.id", "12"),
    "suite id negative": _set("check_suite.id", -4),
    "suite id huge": _set("check_suite.id", 2**70),
    "repository id as a bool": _set("repository.id", True),
    "app as a list": _set("check_suite.app", ["GitHub Actions"]),
    "conclusion as a number": _set("check_suite.conclusion", 5),
    "conclusion over-long": _set("check_suite.conclusion", "success" * 100),
    "NUL in the app name": _set("check_suite.app.name", "Git\x00Hub"),
    "lone surrogate in the status": _set("check_suite.status", "\ud800"),
    "head_sha as a list": _set("check_suite.head_sha", ["a" * 40]),
    "installation id as a string": _set("installation.id", "77"),
    "repository full name with a slash too many": _set("repository.full_name", "acme/web/extra"),
}
UNPROCESSABLE = {
    "head_sha too short": _set("check_suite.head_sha", "abc123"),
    "head_sha upper case": _set("check_suite.head_sha", "A" * 40),
    "head_sha not hex": _set("check_suite.head_sha", "z" * 40),
}
RECORDED_IGNORED = {
    "unknown installation": _set("installation.id", 987654321),
    "unknown repository": _set("repository.id", 555555555),
    "another commit": _set("check_suite.head_sha", "0123456789abcdef0123456789abcdef01234567"),
    "requested, not completed": _set("action", "requested"),
    "an unknown action": _set("action", "exploded"),
}


@pytest.fixture
def waiting(github_world):
    """A build waiting for its commit's checks, a completed failing suite of that commit, and a signed client."""
    world = github_world
    linked, _ = world.linked_app("web")
    app = world.store.update_app(linked.app.id, {"wait_for_checks": True})
    sha = world.push(linked, {"x": "1"})
    (build,) = world.store.list_builds(app_id=app.id)
    assert build.status == BuildState.WAITING
    suite = world.emulator.add_check_suite(linked.repo.id, sha)
    world.emulator.complete_check_suite(suite, "failure", send=False)
    payload = suite_payload(world.emulator, suite, "completed")
    with TestClient(create_app(world.settings)) as client:
        yield world, build, payload, GitHub(client, SECRET)


def _still_waiting(world, build) -> None:
    assert world.store.get_build(build.id).status == BuildState.WAITING
    assert world.store.list_builds(statuses=[BuildState.QUEUED]) == []


@pytest.mark.parametrize("case", sorted(BAD_REQUEST))
def test_malformed_payloads_are_400_and_change_nothing(waiting, case):
    world, build, payload, github = waiting
    bad = copy.deepcopy(payload)
    BAD_REQUEST[case](bad)
    answer = github.deliver(bad, event="check_suite")
    assert answer.status_code == 400, answer.text
    assert "check_suite" in answer.json()["detail"] or "JSON" in answer.json()["detail"]
    _still_waiting(world, build)


@pytest.mark.parametrize("case", sorted(UNPROCESSABLE))
def test_a_head_sha_that_is_no_commit_id_is_422_recorded_and_changes_nothing(waiting, case):
    world, build, payload, github = waiting
    bad = copy.deepcopy(payload)
    UNPROCESSABLE[case](bad)
    answer = github.deliver(bad, event="check_suite", delivery=f"bad-sha-{case.replace(' ', '-')}")
    assert answer.status_code == 422, answer.text
    assert "not a full commit id" in answer.json()["detail"]
    _still_waiting(world, build)


@pytest.mark.parametrize("case", sorted(RECORDED_IGNORED))
def test_events_for_nothing_waiting_or_spoofed_routes_are_recorded_and_ignored(waiting, case):
    world, build, payload, github = waiting
    odd = copy.deepcopy(payload)
    RECORDED_IGNORED[case](odd)
    answer = github.deliver(odd, event="check_suite")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "recorded" and answer.json()["reason"]
    _still_waiting(world, build)


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"payload=1&payload=2", "application/x-www-form-urlencoded"),
        (("[" * 5000 + "]" * 5000).encode(), "application/json"),
    ],
)
def test_undecodable_bodies_are_400(waiting, body, content_type):
    world, build, _payload, github = waiting
    answer = github.deliver(event="check_suite", body=body, content_type=content_type)
    assert answer.status_code == 400, answer.text
    _still_waiting(world, build)


def test_unsigned_wrongly_signed_or_anonymous_deliveries_are_refused(waiting):
    world, build, payload, github = waiting
    assert github.deliver(payload, event="check_suite", signature="").status_code == 401
    assert github.deliver(payload, event="check_suite", secret="not-the-secret").status_code == 401
    answer = github.deliver(payload, event="check_suite", delivery="")
    assert answer.status_code == 400 and "X-GitHub-Delivery" in answer.json()["detail"]
    _still_waiting(world, build)


def test_a_valid_failure_settles_once_and_its_redelivery_is_answered_from_the_record(waiting):
    world, build, payload, github = waiting
    first = github.deliver(payload, event="check_suite", delivery="suite-delivery-1")
    assert first.status_code == 200 and first.json()["status"] == "recorded", first.text
    ended = world.store.get_build(build.id)
    assert ended.status == BuildState.CHECKS_FAILED
    transitions = len(world.store.transitions(build.id))
    again = github.deliver(payload, event="check_suite", delivery="suite-delivery-1")
    assert again.status_code == 200 and again.json()["status"] == "redelivery"
    assert len(world.store.transitions(build.id)) == transitions
    # Form-encoded deliveries are read as GitHub sends them.
    form = github.deliver(payload, event="check_suite", form=True)
    assert form.status_code == 200 and json.loads(form.text)["status"] == "recorded"
