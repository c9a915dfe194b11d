"""The fields of GitHub's `push` webhook payload that decide whether and what to build, decoded defensively."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from starforge_dag.core.inputs import InvalidInput, check_commit_id, check_ref, check_text

MAX_JSON_DEPTH = 32  # GitHub's push payloads nest about 5 deep


def _text(max_chars: int) -> Callable[[str], str]:
    """A string no database or log will choke on: no NUL, no lone surrogate, bounded."""
    return partial(check_text, what="value", max_chars=max_chars)


Name = Annotated[str, AfterValidator(_text(200))]
RefName = Annotated[str, AfterValidator(_text(1000))]
Url = Annotated[str, AfterValidator(_text(2048))]
Path = Annotated[str, AfterValidator(_text(4096))]
Message = Annotated[str, AfterValidator(_text(1_000_000))]

ZERO_SHA = "0" * 40
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


class _Payload(BaseModel):
    """GitHub adds fields over time; unknown ones are ignored rather than rejected."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Repository(_Payload):
    id: int | None = Field(default=None, gt=0, lt=2**63)  # GitHub's repository id: survives renames and transfers
    full_name: Name
    clone_url: Url | None = None
    html_url: Url | None = None
    ssh_url: Url | None = None
    git_url: Url | None = None

    @property
    def urls(self) -> list[str]:
        return [u for u in (self.clone_url, self.html_url, self.ssh_url, self.git_url) if u]


class Commit(_Payload):
    id: Name
    message: Message = ""
    timestamp: datetime | None = None
    added: list[Path] = Field(default_factory=list)
    modified: list[Path] = Field(default_factory=list)
    removed: list[Path] = Field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [*self.added, *self.modified, *self.removed]


class Actor(_Payload):
    """`pusher` carries name/email, `sender` carries login; either may identify who pushed."""

    name: Name | None = None
    login: Name | None = None
    email: Name | None = None


class PushEvent(_Payload):
    ref: RefName
    before: Name = ZERO_SHA
    after: Name
    created: bool = False
    deleted: bool = False
    forced: bool = False
    repository: Repository
    head_commit: Commit | None = None
    commits: list[Commit] = Field(default_factory=list, max_length=10_000)
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


EventT = TypeVar("EventT", bound=BaseModel)


class UndecodablePush(ValueError):
    """A signed body that is not a push payload we can read; the message is safe to answer with."""


def parse_event(text: str, model: type[EventT], kind: str) -> EventT:
    """JSON text to a webhook event model, refusing what would crash or poison later steps (depth, types, NUL,
    surrogates) with an UndecodablePush whose message is safe to answer with."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise UndecodablePush(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise UndecodablePush(f"malformed JSON body: {exc}") from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise UndecodablePush(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()[:5]
        )
        raise UndecodablePush(f"not a {kind} payload: {problems}") from None


def parse_push(text: str) -> PushEvent:
    """JSON text to a PushEvent (see `parse_event`)."""
    return parse_event(text, PushEvent, "push")


def invalid_push(event: PushEvent) -> str | None:
    """Why a well-formed push names no buildable commit: `after` not a full commit id, `ref` not a git ref."""
    try:
        check_ref(event.ref, "ref")
        check_commit_id(event.after, "after")
    except InvalidInput as exc:
        return str(exc)
    return None


def _depth_exceeds(data: object, limit: int) -> bool:
    """Iterative, so checking a deep document cannot itself recurse."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
