"""Image retention: which pushed images of an app may be deleted. Pure: builds and history in, deletions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import PRODUCTION, Build, DesiredChange, DesiredState


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the newest `keep_builds` successful builds' images, and every image desired in the last `keep_days`."""

    keep_builds: int
    keep_days: float

    def __post_init__(self) -> None:
        if self.keep_builds < 1:
            raise ValueError("retention must keep at least the newest build's image")
        if self.keep_days < 0:
            raise ValueError("retention days cannot be negative")


@dataclass(frozen=True)
class Deletion:
    """One manifest to delete, and every build whose image it is (a rebuild may reproduce a digest)."""

    repository: str  # registry/name, no tag
    digest: str
    build_ids: tuple[int, ...]

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


def repository_of(image_ref: str) -> str:
    """`host/name` of `host/name:tag` or `host/name@digest` (a port's colon is not a tag)."""
    name = image_ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def torn_down(history: Sequence[DesiredChange]) -> set[str]:
    """Preview environments whose last change is a teardown: nothing there is desired any more."""
    last: dict[str, DesiredChange] = {}
    for change in sorted(history, key=lambda c: c.revision):
        last[change.environment] = change
    return {env for env, change in last.items() if env != PRODUCTION and change.reason == "preview_closed"}


def protected_images(
    history: Sequence[DesiredChange], desired: DesiredState | None, held: Build | None, since: datetime, now: datetime
) -> set[tuple[str, str]]:
    """Images desired at any moment in [since, now] in production or in a preview still open, the current one, and
    the one a pin holds back. A torn-down preview protects nothing: its images are left to the newest-N rule."""
    keep: set[tuple[str, str]] = set()
    closed = torn_down(history)
    by_environment: dict[str, list[DesiredChange]] = {}
    for change in sorted(history, key=lambda c: c.revision):
        by_environment.setdefault(change.environment, []).append(change)
    for environment, ordered in sorted(by_environment.items()):
        if environment in closed:
            continue
        for change, following in zip(ordered, [*ordered[1:], None]):
            until = following.at if following is not None else now
            if until >= since and change.image_ref and change.image_digest:
                keep.add((repository_of(change.image_ref), change.image_digest))
    if desired is not None:
        keep.add((repository_of(desired.image_ref), desired.image_digest))
    if held is not None and held.image_ref and held.image_digest:
        keep.add((repository_of(held.image_ref), held.image_digest))
    return keep


def plan_retention(
    builds: Sequence[Build],
    history: Sequence[DesiredChange],
    desired: DesiredState | None,
    policy: RetentionPolicy,
    now: datetime,
) -> list[Deletion]:
    """The images of successful builds beyond the newest N, unless desired now, held, or desired within M days."""
    live = [b for b in builds if b.image_ref and b.image_digest and b.image_deleted_at is None]
    production = [b for b in live if b.environment == PRODUCTION]  # previews never crowd production's images out
    newest = sorted(production, key=lambda b: b.id, reverse=True)[: policy.keep_builds]
    held = next((b for b in builds if desired is not None and b.id == desired.held_build_id), None)
    keep = protected_images(history, desired, held, now - timedelta(days=policy.keep_days), now)
    keep |= {(repository_of(b.image_ref or ""), b.image_digest or "") for b in newest}
    doomed: dict[tuple[str, str], list[int]] = {}
    for build in live:
        image = (repository_of(build.image_ref or ""), build.image_digest or "")
        if image not in keep:
            doomed.setdefault(image, []).append(build.id)
    return [Deletion(repo, digest, tuple(sorted(ids))) for (repo, digest), ids in sorted(doomed.items())]
