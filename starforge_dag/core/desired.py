"""When desired state moves, is held by a pin or keeps its image: pure decisions, applied by the store under the lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .models import Build, ChangeReason, DesiredState
from .states import BuildState

AUTOMATIC: frozenset[str] = frozenset({"build", "rewind"})


def order_key(commit_time: datetime | None, build_id: int) -> tuple[datetime, int]:
    """Commits order by time (UTC-aware), then by build; a commit of unknown time is older than any known one."""
    return (commit_time or datetime.min.replace(tzinfo=UTC), build_id)


def sets_mark(reason: ChangeReason, first: bool) -> bool:
    """Automatic changes (and an app's first) become the mark later advances must pass; operator changes do not."""
    return first or reason in AUTOMATIC


@dataclass(frozen=True)
class Mark:
    """The newest build automatic advances reached (a rollback moves desired state back, not this mark)."""

    build_id: int
    commit_time: datetime | None


@dataclass(frozen=True)
class AdvanceFacts:
    """A build that just pushed its image, and the app's desired state as it stands, read under the app's lock."""

    build: Build
    current: DesiredState | None
    reached: Mark | None = None  # None: no automatic advance recorded one; the current build stands for it


@dataclass(frozen=True)
class Move:
    """Point the app at the build's image; `as_requester`: the change is recorded as whoever queued the build."""

    build_id: int
    reason: ChangeReason
    note: str
    pinned: bool | None = None
    as_requester: bool = False


@dataclass(frozen=True)
class Hold:
    """The app is pinned: record the build as held (and as the mark to pass), desired on unpin."""

    build_id: int


@dataclass(frozen=True)
class Keep:
    """A newer commit was already reached: desired state stays where it is."""


@dataclass(frozen=True)
class Refuse:
    """An operator's change that cannot be made, and why."""

    why: str


def decide_advance(facts: AdvanceFacts) -> Move | Hold | Keep:
    """Invariant 2: move to the build's image unless a newer commit was already reached.

    A rewind build (a force-push back to an older commit) moves it backwards, once: only past what was desired
    before it was queued. While the app is pinned the build is held instead: recorded, and desired on unpin.
    """
    build, current = facts.build, facts.current
    advance = Move(build.id, "build", f"build {build.id} of {build.commit_sha[:12]}")
    if current is None:
        return advance
    mark = facts.reached or Mark(current.build_id, current.commit_time)
    newest = max(current.build_id, current.held_build_id or 0)
    if order_key(build.commit_time, build.id) > order_key(mark.commit_time, mark.build_id):
        move = advance
    elif build.rewind and newest < build.id:
        note = f"rewind to {build.commit_sha[:12]} (force-push, build {build.id})"
        move = Move(build.id, "rewind", note, as_requester=True)
    else:
        return Keep()
    return Hold(build.id) if current.pinned else move


def decide_rollback(
    app_id: int, build_id: int, build: Build | None, current: DesiredState | None = None, note: str | None = None
) -> Move | Refuse:
    """An operator's rollback may go backwards, to any succeeded build of the app whose image is kept."""
    if build is None or build.app_id != app_id:
        return Refuse(f"build {build_id} is not a build of this app")
    if build.status != BuildState.SUCCEEDED or not build.image_digest:
        return Refuse(f"build {build.id} did not succeed ({build.status.value}); only succeeded builds have images")
    if build.image_deleted_at is not None:
        return Refuse(
            f"the image of build {build.id} was deleted by image retention at {build.image_deleted_at.isoformat()}; "
            "roll back to a build whose image is kept"
        )
    if current is not None and current.build_id == build.id:
        return Refuse(f"build {build.id} is already the desired state of {build.workspace}/{build.app}")
    return Move(build.id, "rollback", note or f"rollback to build {build.id} of {build.commit_sha[:12]}")


def decide_pin(current: DesiredState | None, note: str | None = None) -> Move | Refuse:
    """A pin holds the app on its current image: successful builds are recorded but held until unpin."""
    if current is None:
        return Refuse("nothing to pin: the app has no desired state yet")
    if current.pinned:
        return Refuse(f"{current.workspace}/{current.app} is already pinned (revision {current.revision})")
    text = note or f"pinned to build {current.build_id} of {current.commit_sha[:12]}"
    return Move(current.build_id, "pin", text, pinned=True)


def decide_unpin(current: DesiredState | None, held: Build | None, note: str | None = None) -> Move | Refuse:
    """Releasing a pin moves to the newest build held meanwhile, unless retention deleted its image."""
    if current is None or not current.pinned:
        return Refuse("the app is not pinned")
    if held is not None and held.image_deleted_at is None and held.id != current.build_id:
        text = note or f"unpinned; moves to held build {held.id} of {held.commit_sha[:12]}"
        return Move(held.id, "unpin", text, pinned=False)
    text = note or f"unpinned at build {current.build_id} of {current.commit_sha[:12]}"
    return Move(current.build_id, "unpin", text, pinned=False)
