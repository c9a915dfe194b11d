"""Pull-request previews: which environment a pull request builds in, the fork gate, what a preview build gets.

Pure decisions: the webhook's facts and what the store recorded of the pull request in, one action out.
"""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_PREFIX = "pr-"
MAX_PR_NUMBER = 2**31 - 1
# GitHub's author_association values of people with write access to the base repository.
WRITE_ACCESS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
BUILDING_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
HANDLED_ACTIONS = frozenset({*BUILDING_ACTIONS, "closed", "labeled"})


def preview_environment(number: int) -> str:
    """`pr-<number>`: the environment a pull request's preview runs in."""
    return f"{PREVIEW_PREFIX}{number}"


def preview_ref(number: int) -> str:
    """Where the base repository keeps a pull request's head commit, forks' included."""
    return f"refs/pull/{number}/head"


def preview_number(environment: str) -> int | None:
    """The pull request of a `pr-<number>` environment; None for production or anything else."""
    digits = environment.removeprefix(PREVIEW_PREFIX)
    if environment == digits or not digits.isdigit() or digits.startswith("0"):
        return None
    number = int(digits)
    return number if 1 <= number <= MAX_PR_NUMBER else None


@dataclass(frozen=True)
class PullRequest:
    """The fields of a `pull_request` event that decide a preview, already checked by the webhook's parser."""

    action: str
    number: int
    head_sha: str
    base_repo_id: int | None
    head_repo_id: int | None  # None: the head repository was deleted, or the payload does not say
    head_repo_full_name: str | None
    head_ref: str | None
    author: str | None
    author_association: str | None
    sender: str
    label: str | None = None  # the label a `labeled` action added
    merged: bool = False

    @property
    def fork(self) -> bool:
        """A head repository other than the base one, by id: a name can be claimed by anyone, an id cannot."""
        return self.head_repo_id is None or self.base_repo_id is None or self.head_repo_id != self.base_repo_id


def gate(fork: bool, author_association: str | None) -> str | None:
    """Why a pull request waits for a person's approval before it builds, or None when it may build at once."""
    if fork:
        return "the head repository is a fork: a person must approve each commit before it builds"
    if (author_association or "").upper() not in WRITE_ACCESS:
        who = author_association or "unknown"
        return f"the author ({who}) has no write access to the repository: a person must approve the commit"
    return None


@dataclass(frozen=True)
class Recorded:
    """What the store holds of the pull request, read under the app's lock."""

    state: str  # open | closed
    head_sha: str
    approved_sha: str | None = None
    held_sha: str | None = None
    desired_build_id: int | None = None


@dataclass(frozen=True)
class BuildPreview:
    """Queue a preview build of the head commit; `approved_by` when a person's approval let it through."""

    sha: str
    reason: str
    approved_by: str | None = None


@dataclass(frozen=True)
class HoldPreview:
    """Record the head commit as held: nothing builds until a person approves exactly this commit."""

    sha: str
    reason: str


@dataclass(frozen=True)
class ClosePreview:
    """The pull request closed or merged: stop its builds and tear its environment down."""

    reason: str
    teardown: bool


@dataclass(frozen=True)
class IgnorePull:
    reason: str


PullAction = BuildPreview | HoldPreview | ClosePreview | IgnorePull


def _label_matches(label: str | None, wanted: str | None) -> bool:
    """GitHub treats label names case-insensitively."""
    return bool(label) and bool(wanted) and (label or "").casefold() == (wanted or "").casefold()


def decide_pull(pull: PullRequest, recorded: Recorded | None, preview_label: str | None) -> PullAction:
    """What one pull_request event does to the app's preview of it.

    Opened, synchronize and reopened build the head commit unless the gate holds it; an approval (by the API or
    by the app's label) covers the approved commit only, so a new commit of a gated pull request is held again.
    """
    if pull.action == "closed":
        was_live = recorded is not None and recorded.state == "open"
        how = "merged" if pull.merged else "closed"
        return ClosePreview(
            f"pull request #{pull.number} was {how}",
            teardown=was_live and recorded is not None and recorded.desired_build_id is not None,
        )
    if recorded is not None and recorded.state == "closed" and pull.action != "reopened":
        return IgnorePull(f"pull request #{pull.number} is closed")
    held = gate(pull.fork, pull.author_association)
    approved = recorded is not None and recorded.approved_sha == pull.head_sha
    if pull.action == "labeled":
        if not _label_matches(pull.label, preview_label):
            return IgnorePull(f"label {(pull.label or '')[:100]!r} is not the app's preview label")
        if held is None or approved:
            return IgnorePull(f"pull request #{pull.number} needs no approval for {pull.head_sha[:12]}")
        return BuildPreview(pull.head_sha, f"approved by label {preview_label!r}", approved_by=pull.sender)
    if pull.action not in BUILDING_ACTIONS:
        return IgnorePull(f"pull_request action {pull.action[:50]!r} builds nothing")
    if held is not None and not approved:
        return HoldPreview(pull.head_sha, held)
    reason = f"{pull.action} pull request #{pull.number} at {pull.head_sha[:12]}"
    return BuildPreview(pull.head_sha, reason)


def decide_approval(number: int, recorded: Recorded | None) -> BuildPreview | IgnorePull:
    """A person approves the held head commit of an open pull request (and only that commit)."""
    if recorded is None:
        return IgnorePull(f"no pull request #{number} is recorded for this app")
    if recorded.state != "open":
        return IgnorePull(f"pull request #{number} is closed")
    if recorded.held_sha is None or recorded.held_sha != recorded.head_sha:
        return IgnorePull(f"pull request #{number} has no commit waiting for approval")
    return BuildPreview(recorded.head_sha, f"approved {recorded.head_sha[:12]} of pull request #{number}")


def preview_gets(secret: bool, for_previews: bool, fork: bool) -> bool:
    """Plain variables reach every preview; a secret only one marked for previews, and never a fork's."""
    if not secret:
        return True
    return for_previews and not fork
