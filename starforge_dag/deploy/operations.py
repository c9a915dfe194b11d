"""Rollback with the registry asked first, and image retention over every app (used by the API, CLI and Dagster)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..buildkit.registry import RegistryAuth
from ..core.models import App, DesiredChange, pinned_image, utcnow
from ..core.retention import Deletion, RetentionPolicy, plan_retention
from ..store import BuildStore, ChangeRefused
from .registry import DeleteRefused, RegistryUnavailable, delete_manifest, image_missing

log = logging.getLogger(__name__)


def rollback(
    store: BuildStore,
    app: App,
    build_id: int,
    actor: str,
    auth: RegistryAuth | None = None,
    note: str | None = None,
) -> DesiredChange:
    """Move the app back to an earlier succeeded build's image, once the registry confirms it still has it."""
    build = store.check_rollback(app.id, build_id)
    pinned = pinned_image(build.image_ref or "", build.image_digest or "")
    missing = image_missing(pinned, auth)
    if missing is not None:
        raise ChangeRefused(f"the image of build {build.id} ({pinned}) is no longer in the registry: {missing}")
    return store.rollback(app.id, build.id, actor, note)


@dataclass
class RetentionReport:
    """What a retention pass did (or, dry, would do)."""

    dry_run: bool
    deleted: list[Deletion] = field(default_factory=list)
    already_gone: list[Deletion] = field(default_factory=list)
    failed: list[tuple[Deletion, str]] = field(default_factory=list)

    @property
    def deleted_builds(self) -> int:
        return sum(len(d.build_ids) for d in self.deleted + self.already_gone)


def collect_images(
    store: BuildStore,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    auth: RegistryAuth | None = None,
    now: datetime | None = None,
    on_event: Callable[[str], None] = log.info,
) -> RetentionReport:
    """Delete each app's images that retention no longer keeps; builds are marked before the registry is asked."""
    at = now or utcnow()
    report = RetentionReport(dry_run=dry_run)
    for app in store.list_apps():
        builds, history, desired = store.retention_candidates(app.id)
        plan = plan_retention(builds, history, desired, policy, at)
        if not plan:
            continue
        if dry_run:
            for deletion in plan:
                on_event(f"would delete {deletion.pinned} (builds {', '.join(map(str, deletion.build_ids))})")
            report.deleted.extend(plan)
            continue

        def still(b, h, d):
            return [i for x in plan_retention(b, h, d, policy, at) for i in x.build_ids]

        marked = {b.id for b in store.mark_images_deleted(app.id, [i for d in plan for i in d.build_ids], still)}
        for deletion in plan:
            if not set(deletion.build_ids) <= marked:
                continue
            try:
                gone = not delete_manifest(deletion.pinned, auth)
            except (DeleteRefused, RegistryUnavailable) as exc:
                store.unmark_image_deleted(deletion.build_ids)
                report.failed.append((deletion, str(exc)))
                on_event(f"could not delete {deletion.pinned}: {exc}")
                continue
            (report.already_gone if gone else report.deleted).append(deletion)
            on_event(f"deleted {deletion.pinned} (builds {', '.join(map(str, deletion.build_ids))})")
    return report
