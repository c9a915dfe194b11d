"""The fields of GitHub's `pull_request` webhook payload that decide a preview, decoded defensively.

What a payload says of the head repository is only believed by id: the base repository's name is easy to claim.
The head commit is always fetched from the base repository (`refs/pull/<number>/head`), never from a URL here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from starforge_dag.core.inputs import InvalidInput, check_commit_id
from starforge_dag.core.previews import MAX_PR_NUMBER, PullRequest

from .push import Actor, Name, RefName, Repository, _text, parse_event

Number = Annotated[StrictInt, Field(gt=0, le=MAX_PR_NUMBER)]
RepoId = Annotated[StrictInt, Field(gt=0, lt=2**63)]
Action = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_text(50))]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HeadRepo(_Payload):
    id: RepoId | None = None
    full_name: Name | None = None


class Side(_Payload):
    """`head` or `base` of a pull request: a commit, its branch and the repository it lives in."""

    sha: Name
    ref: RefName | None = None
    repo: HeadRepo | None = None  # null when a fork was deleted


class Label(_Payload):
    name: Name


class PullRequestBody(_Payload):
    number: Number
    state: Name | None = None
    merged: StrictBool | None = None
    head: Side
    base: Side
    user: Actor | None = None
    author_association: Name | None = None


class PullRequestEvent(_Payload):
    action: Action
    number: Number
    pull_request: PullRequestBody
    repository: Repository
    label: Label | None = None
    sender: Actor | None = None

    def facts(self) -> PullRequest:
        pr = self.pull_request
        head_repo = pr.head.repo
        return PullRequest(
            action=self.action,
            number=self.number,
            head_sha=pr.head.sha,
            base_repo_id=self.repository.id,
            head_repo_id=head_repo.id if head_repo else None,
            head_repo_full_name=head_repo.full_name if head_repo else None,
            head_ref=pr.head.ref,
            author=pr.user.login if pr.user else None,
            author_association=pr.author_association,
            sender=(self.sender.login or self.sender.name or "github") if self.sender else "github",
            label=self.label.name if self.label else None,
            merged=bool(pr.merged),
        )


def parse_pull_request(text: str) -> PullRequestEvent:
    """JSON text to a PullRequestEvent; anything unreadable (types, ranges, depth, NUL) is an UndecodablePush."""
    return parse_event(text, PullRequestEvent, "pull_request")


def invalid_pull_request(event: PullRequestEvent) -> str | None:
    """Why a well-formed payload names no preview we may build: numbers or repositories that disagree, no commit."""
    pr = event.pull_request
    if pr.number != event.number:
        return f"number {event.number} and pull_request.number {pr.number} differ"
    base = pr.base.repo
    if event.repository.id is None or base is None or base.id != event.repository.id:
        return "pull_request.base.repo is not the repository the event is for"
    if base.full_name is not None and base.full_name.lower() != event.repository.full_name.lower():
        return "pull_request.base.repo.full_name is not the repository's"
    try:
        check_commit_id(pr.head.sha, "pull_request.head.sha")
    except InvalidInput as exc:
        return str(exc)
    return None
