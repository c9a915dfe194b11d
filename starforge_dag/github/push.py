"""The fields of GitHub's `push` webhook payload that decide whether and what to build."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

ZERO_SHA = "0" * 40
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


class _Payload(BaseModel):
    """GitHub adds fields over time; unknown ones are ignored rather than rejected."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Repository(_Payload):
    id: int | None = None  # GitHub's repository id: stays the same across renames and transfers
    full_name: str
    clone_url: str | None = None
    html_url: str | None = None
    ssh_url: str | None = None
    git_url: str | None = None

    @property
    def urls(self) -> list[str]:
        return [u for u in (self.clone_url, self.html_url, self.ssh_url, self.git_url) if u]


class Commit(_Payload):
    id: str
    message: str = ""
    timestamp: datetime | None = None
    added: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [*self.added, *self.modified, *self.removed]


class Actor(_Payload):
    """`pusher` carries name/email, `sender` carries login; either may identify who pushed."""

    name: str | None = None
    login: str | None = None
    email: str | None = None


class PushEvent(_Payload):
    ref: str
    before: str = ZERO_SHA
    after: str
    created: bool = False
    deleted: bool = False
    forced: bool = False
    repository: Repository
    head_commit: Commit | None = None
    commits: list[Commit] = Field(default_factory=list)
    pusher: Actor | None = None
    sender: Actor | None = None

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix(BRANCH_PREFIX) if self.ref.startswith(BRANCH_PREFIX) else None

    @property
    def is_tag(self) -> bool:
        return self.ref.startswith(TAG_PREFIX)

    @property
    def is_deletion(self) -> bool:
        return self.deleted or self.after == ZERO_SHA

    @property
    def actor(self) -> str:
        names = [who.login or who.name for who in (self.sender, self.pusher) if who]
        return next((name for name in names if name), "github")

    @property
    def commit_time(self) -> datetime | None:
        return self.head_commit.timestamp if self.head_commit else None
