"""The build queue: webhook deliveries and manual requests in, claims by the sensor out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..core.models import App, Build, utcnow
from ..core.states import BuildState
from . import schema as t
from .apps import AppArchived
from .desired import lock_app, read_desired, set_desired
from .rows import BUILD_SELECT, StoreBase, as_utc, for_update, get_build, to_build
from .transitions import record_transition, set_state
from .variables import record_build_variables, resolved_versions


@dataclass
class DeliveryOutcome:
    redelivery: bool
    builds: list[Build] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


@dataclass
class EnqueueOutcome:
    build: Build
    created: bool


KNOWN = (*t.ACTIVE_STATES, BuildState.SUCCEEDED.value, BuildState.SUPERSEDED.value)


def settings_key(app: App, variables: Sequence[sa.Row] = ()) -> str:
    """What besides the commit decides the image: an image is reused only for the same commit and this key.

    A target stage and variables (by fingerprint) count only when set, so an app without them keeps its key.
    """
    settings: dict[str, object] = {"root_dir": app.root_dir, "dockerfile_path": app.dockerfile_path}
    if app.target:
        settings["target"] = app.target
    if variables:
        settings["variables"] = sorted((r.name, r.secret, r.fingerprint) for r in variables)
    payload = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def newer_commit(first: datetime | None, second: datetime | None) -> bool:
    """Whether a commit at `first` is newer than one at `second`; unknown times compare as not newer."""
    first, second = as_utc(first), as_utc(second)
    return first is not None and second is not None and first > second


def _active_for_commit(conn: sa.Connection, app_id: int, sha: str) -> Build | None:
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app_id, t.builds.c.commit_sha == sha, t.builds.c.status.in_(t.ACTIVE_STATES)
        )
    ).first()
    return to_build(row) if row else None


def _latest_of_commit(conn: sa.Connection, app_id: int, sha: str, statuses: Sequence[str]) -> Build | None:
    row = conn.execute(
        BUILD_SELECT.where(t.builds.c.app_id == app_id, t.builds.c.commit_sha == sha, t.builds.c.status.in_(statuses))
        .order_by(t.builds.c.id.desc())
        .limit(1)
    ).first()
    return to_build(row) if row else None


def _reusable_image(conn: sa.Connection, app: App, sha: str) -> Build | None:
    """The newest succeeded build of this commit made with the app's current build settings."""
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app.id,
            t.builds.c.commit_sha == sha,
            t.builds.c.status == BuildState.SUCCEEDED.value,
            t.builds.c.settings_key == settings_key(app, resolved_versions(conn, app)),
            t.builds.c.image_digest.is_not(None),
        )
        .order_by(t.builds.c.id.desc())
        .limit(1)
    ).first()
    return to_build(row) if row else None


def _newer_than(conn: sa.Connection, app: App, ref: str, commit_time: datetime | None) -> str | None:
    """Why a pushed commit is already behind: a newer commit is queued, building or desired; None if it is not."""
    if commit_time is None:
        return None
    rows = conn.execute(
        sa.select(t.builds.c.id, t.builds.c.commit_sha, t.builds.c.commit_time).where(
            t.builds.c.app_id == app.id, t.builds.c.ref == ref, t.builds.c.status.in_(t.ACTIVE_STATES)
        )
    ).all()
    for build_id, sha, their_time in rows:
        if newer_commit(their_time, commit_time):
            return f"superseded by build {build_id} of the newer commit {sha[:12]}"
    desired = read_desired(conn, app.id)
    if desired is not None and newer_commit(desired.commit_time, commit_time):
        return f"superseded: desired state is already at the newer commit {desired.commit_sha[:12]}"
    return None


def _supersede(
    conn: sa.Connection,
    app: App,
    new: Build,
    actor: str,
    *,
    reason: str,
    whole_app: bool = False,
) -> None:
    """Supersede the other active builds of the ref (of the whole app on a force-push) that are not newer.

    Queued ones end now; running ones are asked to stop when the app says so or the branch was rewritten.
    """
    query = sa.select(t.builds.c.id, t.builds.c.status, t.builds.c.commit_time).where(
        t.builds.c.app_id == app.id,
        t.builds.c.id != new.id,
        t.builds.c.commit_sha != new.commit_sha,
        t.builds.c.status.in_(t.ACTIVE_STATES),
    )
    if not whole_app:
        query = query.where(t.builds.c.ref == new.ref)
    for build_id, status, their_time in conn.execute(for_update(conn, query)).all():
        if not whole_app and newer_commit(their_time, new.commit_time):
            continue
        if status == BuildState.QUEUED.value:
            set_state(conn, build_id, BuildState.QUEUED, BuildState.SUPERSEDED, reason, actor)
        elif app.cancel_running or whole_app:
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id, t.builds.c.cancel_state.is_(None))
                .values(cancel_state=BuildState.SUPERSEDED.value, error=reason, updated_at=utcnow())
            )


def _insert(
    conn: sa.Connection,
    app: App,
    ref: str,
    sha: str,
    trigger: str,
    delivery_id: str | None,
    actor: str,
    commit_time: datetime | None,
    rewind: bool = False,
) -> Build | None:
    """A new queued build, or None when a concurrent enqueue of the same commit holds the active slot."""
    now = utcnow()
    variables = resolved_versions(conn, app)
    try:
        with conn.begin_nested():
            build_id = conn.execute(
                t.builds.insert()
                .values(
                    app_id=app.id,
                    ref=ref,
                    commit_sha=sha,
                    status=BuildState.QUEUED.value,
                    trigger=trigger,
                    delivery_id=delivery_id,
                    commit_time=commit_time,
                    settings_key=settings_key(app, variables),
                    rewind=rewind,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.builds.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    record_build_variables(conn, build_id, variables)
    record_transition(conn, build_id, None, BuildState.QUEUED, f"{trigger} of {ref} at {sha[:12]}", actor, None)
    return get_build(conn, build_id)


def _force_push(
    conn: sa.Connection,
    app: App,
    ref: str,
    sha: str,
    delivery_id: str | None,
    actor: str,
    commit_time: datetime | None,
) -> tuple[Build, bool]:
    """The user rewrote the branch to `sha`: it becomes the desired state, backwards if need be (a rewind)."""
    desired = read_desired(conn, app.id)
    seen = _latest_of_commit(conn, app.id, sha, KNOWN)
    commit_time = commit_time or (seen.commit_time if seen else None)
    rewind = desired is not None and desired.commit_sha != sha and not newer_commit(commit_time, desired.commit_time)
    what = f"force-push of {ref} to {sha[:12]}"
    active = _active_for_commit(conn, app.id, sha)
    if desired is not None and desired.commit_sha == sha:
        head = get_build(conn, desired.build_id)
    elif active is not None:
        if rewind and not active.rewind:
            conn.execute(t.builds.update().where(t.builds.c.id == active.id).values(rewind=True))
        head = get_build(conn, active.id)
    elif (image := _reusable_image(conn, app, sha)) is not None:
        why = f"rewind to {sha[:12]}" if rewind else f"{sha[:12]}"
        note = f"{why} by {what}, reusing the image of build {image.id}"
        set_desired(conn, app.id, image, "rewind" if rewind else "build", note, actor)
        head = image
    else:
        head = None
    if head is not None:
        _supersede(conn, app, head, actor, reason=f"superseded by the {what}", whole_app=True)
        return head, False
    build = _insert(conn, app, ref, sha, "push", delivery_id, actor, commit_time, rewind=rewind)
    if build is None:
        raise RuntimeError(f"build of {sha[:12]} for app {app.id} appeared while the app was locked")
    _supersede(conn, app, build, actor, reason=f"superseded by the {what} (build {build.id})", whole_app=True)
    return build, True


def enqueue_in(
    conn: sa.Connection,
    app: App,
    ref: str,
    sha: str,
    trigger: str,
    delivery_id: str | None,
    actor: str,
    *,
    commit_time: datetime | None = None,
    forced: bool = False,
) -> tuple[Build, bool]:
    """Queue a build of `sha` for the app, or answer with the build that already covers it.

    A push adds nothing for a commit already queued, building, built or superseded, and a commit older than one
    already queued, building or desired is recorded as superseded at once. A force-push is the user's rewind.
    A manual build joins an active build of the commit, and otherwise always builds.
    """
    lock_app(conn, app.id)
    if conn.execute(sa.select(t.apps.c.archived_at).where(t.apps.c.id == app.id)).scalar() is not None:
        raise AppArchived(f"app {app.workspace}/{app.name} was removed: it builds nothing")
    commit_time = as_utc(commit_time)
    if trigger == "push" and forced:
        return _force_push(conn, app, ref, sha, delivery_id, actor, commit_time)
    active = _active_for_commit(conn, app.id, sha)
    if active is not None:
        return active, False
    if trigger == "push" and (seen := _latest_of_commit(conn, app.id, sha, KNOWN)) is not None:
        return seen, False
    behind = _newer_than(conn, app, ref, commit_time) if trigger == "push" else None
    build = _insert(conn, app, ref, sha, trigger, delivery_id, actor, commit_time)
    if build is None:  # a concurrent enqueue of the commit won the active slot (SQLite without a row lock)
        active = _active_for_commit(conn, app.id, sha)
        if active is None:
            raise RuntimeError(f"build of {sha[:12]} for app {app.id} could not be queued")
        return active, False
    if behind is not None:
        set_state(conn, build.id, BuildState.QUEUED, BuildState.SUPERSEDED, behind, actor)
        return get_build(conn, build.id), False
    _supersede(conn, app, build, actor, reason=f"superseded by build {build.id}")
    return build, True


class Queue(StoreBase):
    """Deliveries, enqueues and the sensor's claims."""

    def record_delivery(
        self,
        delivery_id: str,
        event: str,
        wanted: Sequence[tuple[App, str, str]],
        actor: str = "github",
        *,
        commit_time: datetime | None = None,
        forced: bool = False,
    ) -> DeliveryOutcome:
        """Record a webhook delivery and enqueue its builds atomically; a redelivery enqueues nothing.

        `commit_time` (the pushed head commit's time) orders commits; `forced` marks a force-push.
        """
        try:
            with self._tx() as conn:
                conn.execute(
                    t.webhook_deliveries.insert().values(
                        delivery_id=delivery_id, event=event, build_ids=[], received_at=utcnow()
                    )
                )
                builds, created = [], []
                for app, ref, sha in wanted:
                    build, was_created = enqueue_in(
                        conn, app, ref, sha, "push", delivery_id, actor, commit_time=commit_time, forced=forced
                    )
                    builds.append(build)
                    if was_created:
                        created.append(build.id)
                conn.execute(
                    t.webhook_deliveries.update()
                    .where(t.webhook_deliveries.c.delivery_id == delivery_id)
                    .values(build_ids=[b.id for b in builds])
                )
                return DeliveryOutcome(redelivery=False, builds=builds, created=created)
        except IntegrityError:
            with self.engine.connect() as conn:
                ids = conn.execute(
                    sa.select(t.webhook_deliveries.c.build_ids).where(t.webhook_deliveries.c.delivery_id == delivery_id)
                ).scalar()
                if ids is None:
                    raise
                return DeliveryOutcome(redelivery=True, builds=[get_build(conn, i) for i in ids])

    def enqueue(
        self,
        app: App,
        ref: str,
        sha: str,
        trigger: str = "manual",
        actor: str = "api",
        *,
        commit_time: datetime | None = None,
        forced: bool = False,
    ) -> EnqueueOutcome:
        """Queue one build (a manual build rebuilds an ended commit; see `enqueue_in` for pushes)."""
        with self._tx() as conn:
            build, created = enqueue_in(
                conn, app, ref, sha, trigger, None, actor, commit_time=commit_time, forced=forced
            )
        return EnqueueOutcome(build=build, created=created)

    def claim_queued(self, limit: int, claimer: str) -> list[Build]:
        """Atomically take up to `limit` unclaimed queued builds; no build is ever handed out twice."""
        with self._tx() as conn:
            query = (
                sa.select(t.builds.c.id)
                .where(t.builds.c.status == BuildState.QUEUED.value, t.builds.c.claimed_at.is_(None))
                .order_by(t.builds.c.id)
                .limit(limit)
            )
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = conn.execute(query).scalars().all()
            if not ids:
                return []
            conn.execute(
                t.builds.update().where(t.builds.c.id.in_(ids)).values(claimed_at=utcnow(), claimed_by=claimer)
            )
            rows = conn.execute(BUILD_SELECT.where(t.builds.c.id.in_(ids)).order_by(t.builds.c.id)).all()
        return [to_build(r) for r in rows]

    def release_claim(self, build_id: int) -> None:
        """Hand a claimed build back to the queue (its run was never created)."""
        with self._tx() as conn:
            conn.execute(
                t.builds.update()
                .where(
                    t.builds.c.id == build_id, t.builds.c.status == BuildState.QUEUED.value, t.builds.c.run_id.is_(None)
                )
                .values(claimed_at=None, claimed_by=None)
            )

    def stale_claims(self, older_than: datetime) -> list[Build]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                BUILD_SELECT.where(
                    t.builds.c.status == BuildState.QUEUED.value,
                    t.builds.c.run_id.is_(None),
                    t.builds.c.claimed_at.is_not(None),
                    t.builds.c.claimed_at < older_than,
                )
            ).all()
        return [to_build(r) for r in rows]

    def attach_run(self, build_id: int, run_id: str) -> Build:
        with self._tx() as conn:
            conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(run_id=run_id, updated_at=utcnow()))
            return get_build(conn, build_id)
