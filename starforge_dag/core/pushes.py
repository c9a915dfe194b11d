"""Which push builds and which builds it makes obsolete: pure decisions, applied by the queue under the app's lock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .models import App, Build, ChangeReason, DesiredState
from .states import BuildState


def settings_key(app: App, variables: Iterable[tuple[str, bool, str]] = ()) -> str:
    """What besides the commit decides the image: an image is reused only for the same commit and this key.

    A target stage and variables (name, secret, fingerprint) count only when set, so an app without them keeps
    its key.
    """
    settings: dict[str, object] = {"root_dir": app.root_dir, "dockerfile_path": app.dockerfile_path}
    if app.target:
        settings["target"] = app.target
    if chosen := sorted(variables):
        settings["variables"] = chosen
    payload = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def newer_commit(first: datetime | None, second: datetime | None) -> bool:
    """Whether a commit at `first` is newer than one at `second` (both UTC-aware); unknown times are not newer."""
    return first is not None and second is not None and first > second


def _force_push(ref: str, sha: str) -> str:
    return f"force-push of {ref} to {sha[:12]}"


@dataclass(frozen=True)
class PushFacts:
    """What the store holds for the commit asked for, read under the app's lock."""

    ref: str
    sha: str
    trigger: str
    commit_time: datetime | None = None
    forced: bool = False
    active: Build | None = None  # the queued or running build of this commit
    seen: Build | None = None  # the newest queued, running, built or superseded build of this commit
    rivals: Sequence[Build] = ()  # the queued and running builds of the ref (others are ignored)
    desired: DesiredState | None = None
    image: Build | None = None  # the newest succeeded build of this commit made with the app's current settings

    @property
    def force_push(self) -> bool:
        """Only a push is forced: the user rewrote the branch, so its head becomes the desired state."""
        return self.trigger == "push" and self.forced


@dataclass(frozen=True)
class Join:
    """The commit is covered already: answer with that build (marked a rewind when `rewind`)."""

    build_id: int
    rewind: bool = False
    sweep: bool = False


@dataclass(frozen=True)
class ReuseImage:
    """A force-push to a commit built with the same settings: desired state moves to that image, nothing builds."""

    build_id: int
    reason: ChangeReason
    note: str
    sweep: bool = True


@dataclass(frozen=True)
class Enqueue:
    """Queue a build of the commit; `behind` says why it is superseded at once (a newer commit is ahead)."""

    commit_time: datetime | None
    rewind: bool = False
    behind: str | None = None
    sweep: bool = True


PushAction = Join | ReuseImage | Enqueue


def _behind(facts: PushFacts) -> str | None:
    """Why the pushed commit is already behind: a newer commit is queued, building or desired."""
    if facts.commit_time is None:
        return None
    for rival in facts.rivals:
        if rival.status.terminal or rival.ref != facts.ref:
            continue
        if newer_commit(rival.commit_time, facts.commit_time):
            return f"superseded by build {rival.id} of the newer commit {rival.commit_sha[:12]}"
    desired = facts.desired
    if desired is not None and newer_commit(desired.commit_time, facts.commit_time):
        return f"superseded: desired state is already at the newer commit {desired.commit_sha[:12]}"
    return None


def _decide_force_push(facts: PushFacts) -> PushAction:
    """The branch was rewritten to the commit: it becomes desired, backwards if need be (a rewind), once."""
    desired, active, sha = facts.desired, facts.active, facts.sha
    commit_time = facts.commit_time or (facts.seen.commit_time if facts.seen else None)
    rewind = desired is not None and desired.commit_sha != sha and not newer_commit(commit_time, desired.commit_time)
    if desired is not None and desired.commit_sha == sha:
        return Join(desired.build_id, sweep=True)
    if active is not None:
        return Join(active.id, rewind=rewind and not active.rewind, sweep=True)
    if facts.image is not None:
        why = f"rewind to {sha[:12]}" if rewind else sha[:12]
        note = f"{why} by {_force_push(facts.ref, sha)}, reusing the image of build {facts.image.id}"
        return ReuseImage(facts.image.id, "rewind" if rewind else "build", note)
    return Enqueue(commit_time, rewind=rewind)


def decide_push(facts: PushFacts) -> PushAction:
    """Invariant 1 and the order of commits: what a push or a manual build of a commit adds to the queue.

    A push adds nothing for a commit already queued, building, built or superseded, and a commit older than one
    already queued, building or desired is recorded as superseded at once. A force-push is the user's rewind.
    A manual build joins an active build of the commit, and otherwise always builds.
    """
    if facts.force_push:
        return _decide_force_push(facts)
    if facts.active is not None:
        return Join(facts.active.id)
    if facts.trigger == "push" and facts.seen is not None:
        return Join(facts.seen.id)
    behind = _behind(facts) if facts.trigger == "push" else None
    return Enqueue(facts.commit_time, behind=behind, sweep=behind is None)


@dataclass(frozen=True)
class SweepFacts:
    """The build a push now stands at, and the other queued and running builds of its app (read locked)."""

    head: Build
    others: Sequence[Build]
    cancel_running: bool
    created: bool  # the push queued `head` itself
    forced_ref: str | None = None  # the ref a force-push rewrote: the whole app's history is abandoned


@dataclass(frozen=True)
class EndQueued:
    """End a build that never started (queued, or waiting for its checks) as superseded."""

    build_id: int
    reason: str
    state: BuildState = BuildState.QUEUED


@dataclass(frozen=True)
class AskToStop:
    """Flag a running build to end as superseded at its next check (a first stop request keeps its reason)."""

    build_id: int
    reason: str


SweepAction = EndQueued | AskToStop


def _sweep_reason(facts: SweepFacts) -> str:
    head = facts.head
    if facts.forced_ref is None:
        return f"superseded by build {head.id}"
    what = _force_push(facts.forced_ref, head.commit_sha)
    return f"superseded by the {what} (build {head.id})" if facts.created else f"superseded by the {what}"


def sweep(facts: SweepFacts) -> list[SweepAction]:
    """Supersede the other active builds of the ref (of the whole app on a force-push) that are not newer.

    Queued and waiting ones end now; running ones are asked to stop when the app says so or the branch was rewritten.
    """
    head, forced = facts.head, facts.forced_ref is not None
    reason = _sweep_reason(facts)
    actions: list[SweepAction] = []
    for other in facts.others:
        if other.id == head.id or other.commit_sha == head.commit_sha or other.status.terminal:
            continue
        if not forced and (other.ref != head.ref or newer_commit(other.commit_time, head.commit_time)):
            continue
        if other.status in (BuildState.QUEUED, BuildState.WAITING):
            actions.append(EndQueued(other.id, reason, other.status))
        elif facts.cancel_running or forced:
            actions.append(AskToStop(other.id, reason))
    return actions
