"""The pure rules of pull-request previews: environments, the fork gate, approvals, teardown, what previews get,
and retention once a preview is torn down."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from starforge_dag.core.models import Build, DesiredChange
from starforge_dag.core.previews import (
    MAX_PR_NUMBER,
    BuildPreview,
    ClosePreview,
    HoldPreview,
    IgnorePull,
    PullRequest,
    Recorded,
    decide_approval,
    decide_pull,
    gate,
    preview_environment,
    preview_gets,
    preview_number,
    preview_ref,
)
from starforge_dag.core.retention import RetentionPolicy, plan_retention
from starforge_dag.core.states import BuildState

SHA, NEWER = "a" * 40, "b" * 40
MEMBER = PullRequest("opened", 4, SHA, 10, 10, "acme/web", "feature", "ada", "MEMBER", "ada")
FORK = replace(MEMBER, head_repo_id=99, head_repo_full_name="mallory/web", author="mallory", sender="mallory")


def test_environments_and_refs_of_a_pull_request() -> None:
    assert preview_environment(4) == "pr-4" and preview_ref(4) == "refs/pull/4/head"
    assert preview_number("pr-4") == 4 and preview_number(f"pr-{MAX_PR_NUMBER}") == MAX_PR_NUMBER
    for other in ("production", "pr-0", "pr-04", "pr-", "pr-x", f"pr-{MAX_PR_NUMBER + 1}", "pr--1"):
        assert preview_number(other) is None, other


@pytest.mark.parametrize(
    ("pull", "holds"),
    [
        (MEMBER, False),
        (replace(MEMBER, author_association="OWNER"), False),
        (replace(MEMBER, author_association="collaborator"), False),
        (replace(MEMBER, author_association="CONTRIBUTOR"), True),
        (replace(MEMBER, author_association="FIRST_TIMER"), True),
        (replace(MEMBER, author_association=None), True),
        (FORK, True),
        (replace(FORK, author_association="OWNER"), True),  # a fork is gated whoever opened it
        (replace(MEMBER, head_repo_id=None), True),  # the head repository is gone: nobody can say whose it is
        (replace(MEMBER, base_repo_id=None), True),
        (replace(MEMBER, head_repo_id=11, head_repo_full_name="acme/web"), True),  # the base's name, another id
    ],
)
def test_the_gate_trusts_the_base_repository_by_id_and_authors_with_write_access(pull, holds: bool) -> None:
    assert (gate(pull.fork, pull.author_association) is not None) is holds
    assert isinstance(decide_pull(pull, None, None), HoldPreview if holds else BuildPreview)


def test_an_approval_covers_the_approved_commit_only() -> None:
    held = Recorded("open", SHA, held_sha=SHA)
    assert decide_approval(4, held) == BuildPreview(SHA, decide_approval(4, held).reason)
    approved = Recorded("open", SHA, approved_sha=SHA)
    assert isinstance(decide_pull(replace(FORK, action="synchronize"), approved, None), BuildPreview)
    newer = replace(FORK, action="synchronize", head_sha=NEWER)
    assert decide_pull(newer, approved, None) == HoldPreview(NEWER, gate(True, "MEMBER") or "")
    for nothing in (
        None,
        Recorded("closed", SHA, held_sha=SHA),
        Recorded("open", SHA),
        Recorded("open", NEWER, held_sha=SHA),
    ):
        assert isinstance(decide_approval(4, nothing), IgnorePull), nothing


def test_only_the_apps_label_approves_and_only_what_is_held() -> None:
    labelled = replace(FORK, action="labeled", label="Safe-To-Preview", sender="lead")
    assert decide_pull(labelled, Recorded("open", SHA, held_sha=SHA), "safe-to-preview") == BuildPreview(
        SHA, "approved by label 'safe-to-preview'", approved_by="lead"
    )
    assert isinstance(decide_pull(labelled, None, None), IgnorePull)  # the app names no label
    assert isinstance(decide_pull(replace(labelled, label="bug"), None, "safe-to-preview"), IgnorePull)
    assert isinstance(
        decide_pull(replace(MEMBER, action="labeled", label="safe-to-preview"), None, "safe-to-preview"), IgnorePull
    )


def test_closing_tears_down_only_what_was_deployed_and_closed_pull_requests_build_nothing() -> None:
    deployed = Recorded("open", SHA, desired_build_id=3)
    assert decide_pull(replace(MEMBER, action="closed", merged=True), deployed, None) == ClosePreview(
        "pull request #4 was merged", teardown=True
    )
    assert decide_pull(replace(MEMBER, action="closed"), Recorded("open", SHA), None).teardown is False
    assert decide_pull(replace(MEMBER, action="closed"), None, None).teardown is False
    closed = Recorded("closed", SHA)
    assert isinstance(decide_pull(replace(MEMBER, action="synchronize"), closed, None), IgnorePull)
    assert isinstance(decide_pull(replace(MEMBER, action="reopened"), closed, None), BuildPreview)
    for action in ("edited", "assigned", "review_requested", "unlabeled", "converted_to_draft"):
        assert isinstance(decide_pull(replace(MEMBER, action=action), None, None), IgnorePull)


@pytest.mark.parametrize(
    ("secret", "for_previews", "fork", "gets"),
    [
        (False, False, False, True),
        (False, False, True, True),
        (True, False, False, False),
        (True, True, False, True),
        (True, True, True, False),
        (True, False, True, False),
    ],
)
def test_what_a_preview_build_gets(secret: bool, for_previews: bool, fork: bool, gets: bool) -> None:
    assert preview_gets(secret, for_previews, fork) is gets


NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
REPO = "127.0.0.1:5000/apps/acme/web"


def _build(build_id: int, environment: str = "production") -> Build:
    at = NOW - timedelta(hours=10 - build_id)
    return Build(
        id=build_id,
        app_id=1,
        workspace="acme",
        app="web",
        ref="main" if environment == "production" else "refs/pull/4/head",
        commit_sha=f"{build_id:040x}",
        status=BuildState.SUCCEEDED,
        trigger="push" if environment == "production" else "pull_request",
        image_ref=f"{REPO}:{build_id:040x}",
        image_digest=f"sha256:{build_id:064x}",
        created_at=at,
        updated_at=at,
        environment=environment,
    )


def _change(revision: int, build: Build | None, environment: str, reason: str = "build") -> DesiredChange:
    return DesiredChange(
        revision=revision,
        app_id=1,
        workspace="acme",
        app="web",
        build_id=build.id if build else None,
        image_ref=build.image_ref if build else None,
        image_digest=build.image_digest if build else None,
        commit_sha=build.commit_sha if build else "f" * 40,
        reason=reason,  # type: ignore[arg-type]
        note="",
        actor="test",
        pinned=False,
        at=NOW - timedelta(hours=10 - revision),
        environment=environment,
    )


def test_an_open_previews_image_is_kept_and_a_torn_down_ones_are_deletable() -> None:
    production = [_build(1), _build(2)]
    previews = [_build(3, "pr-4"), _build(4, "pr-4")]
    builds = production + previews
    history = [_change(1, builds[0], "production"), _change(2, builds[2], "pr-4"), _change(3, builds[3], "pr-4")]
    policy = RetentionPolicy(keep_builds=1, keep_days=0)

    open_plan = plan_retention(builds, history, None, policy, NOW)
    assert sorted(i for d in open_plan for i in d.build_ids) == [3]  # 1 desired, 2 newest production, 4 desired

    torn = [*history, _change(4, None, "pr-4", "preview_closed")]
    closed_plan = plan_retention(builds, torn, None, policy, NOW)
    assert sorted(i for d in closed_plan for i in d.build_ids) == [3, 4]
    # Previews never count among the newest production builds kept.
    assert 2 not in {i for d in closed_plan for i in d.build_ids}
