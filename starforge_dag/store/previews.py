"""Pull-request previews: the recorded pull requests, their gate, their builds and their environments' feed entries.

A preview's environment (`pr-<number>`) has its own entries in the desired-state feed; production's desired state
(`desired_state`) is never touched by a preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..core.models import App, Build, ChangeReason, DesiredChange, DesiredState, utcnow
from ..core.previews import (
    BuildPreview,
    ClosePreview,
    HoldPreview,
    IgnorePull,
    PullRequest,
    Recorded,
    decide_approval,
    decide_pull,
    preview_environment,
    preview_ref,
)
from ..core.states import BuildState
from . import schema as t
from .deployments import record_deployment
from .desired import Advance, ChangeRefused, lock_app, next_revision, read_desired
from .notifications import record_desired_event
from .queue import Preview, enqueue_in
from .rows import APP_FROM, BUILD_SELECT, StoreBase, aware, for_update, to_build
from .transitions import set_state


@dataclass(frozen=True)
class PreviewRecord:
    """A pull request of an app with previews, as recorded."""

    app_id: int
    workspace: str
    app: str
    number: int
    environment: str
    state: str
    head_sha: str
    head_ref: str | None
    head_repo_id: int | None
    head_repo_full_name: str | None
    author: str | None
    author_association: str | None
    fork: bool
    held_sha: str | None
    held_reason: str | None
    approved_sha: str | None
    approved_by: str | None
    approved_at: datetime | None
    build_id: int | None
    desired_build_id: int | None
    desired_revision: int | None
    updated_at: datetime

    @property
    def held(self) -> bool:
        return self.state == "open" and self.held_sha is not None and self.held_sha == self.head_sha


@dataclass
class PullResult:
    """What one pull_request event did to one app."""

    app: App
    action: str  # build | held | closed | ignored
    reason: str
    build: Build | None = None
    created: bool = False


@dataclass
class PullOutcome:
    redelivery: bool
    results: list[PullResult] = field(default_factory=list)
    build_ids: list[int] = field(default_factory=list)


_PREVIEW_SELECT = sa.select(t.previews, t.apps.c.name.label("app"), t.workspaces.c.name.label("workspace")).select_from(
    t.previews.join(APP_FROM, t.apps.c.id == t.previews.c.app_id)
)


def _record(row: sa.Row) -> PreviewRecord:
    m = row._mapping
    values = {name: m[name] for name in PreviewRecord.__dataclass_fields__ if name in m}
    values = {k: aware(v) if isinstance(v, datetime) else v for k, v in values.items()}
    return PreviewRecord(**values, environment=preview_environment(m["number"]))


def read_preview(conn: sa.Connection, app_id: int, number: int) -> PreviewRecord | None:
    row = conn.execute(_PREVIEW_SELECT.where(t.previews.c.app_id == app_id, t.previews.c.number == number)).first()
    return None if row is None else _record(row)


def _recorded(found: PreviewRecord | None) -> Recorded | None:
    if found is None:
        return None
    return Recorded(found.state, found.head_sha, found.approved_sha, found.held_sha, found.desired_build_id)


def _save(conn: sa.Connection, app: App, pull: PullRequest, found: PreviewRecord | None, **values: object) -> None:
    """Insert or update the pull request's row with what this event says of its head and author."""
    now = utcnow()
    facts: dict[str, object] = dict(
        head_sha=pull.head_sha,
        head_ref=pull.head_ref,
        head_repo_id=pull.head_repo_id,
        head_repo_full_name=pull.head_repo_full_name,
        author=pull.author,
        author_association=pull.author_association,
        fork=pull.fork,
        updated_at=now,
        **values,
    )
    if found is None:
        facts.setdefault("state", "open")
        conn.execute(t.previews.insert().values(app_id=app.id, number=pull.number, created_at=now, **facts))
    else:
        where = (t.previews.c.app_id == app.id) & (t.previews.c.number == pull.number)
        conn.execute(t.previews.update().where(where).values(**facts))


def _stop_environment(conn: sa.Connection, app_id: int, environment: str, reason: str, actor: str) -> None:
    """End the environment's queued builds and ask its running ones to stop (a newer commit, or the PR closed)."""
    query = BUILD_SELECT.where(
        t.builds.c.app_id == app_id, t.builds.c.environment == environment, t.builds.c.status.in_(t.ACTIVE_STATES)
    )
    for build in [to_build(r) for r in conn.execute(for_update(conn, query))]:
        if build.status == BuildState.QUEUED:
            set_state(conn, build.id, BuildState.QUEUED, BuildState.SUPERSEDED, reason, actor)
        else:
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build.id, t.builds.c.cancel_state.is_(None))
                .values(cancel_state=BuildState.SUPERSEDED.value, error=reason, updated_at=utcnow())
            )


def append_change(
    conn: sa.Connection,
    app_id: int,
    environment: str,
    build: Build | None,
    commit_sha: str,
    reason: ChangeReason,
    note: str,
    actor: str,
    run_id: str | None = None,
) -> DesiredChange:
    """A preview environment's feed entry: the build's image, or none (a teardown). Callers hold the app's lock."""
    names = conn.execute(
        sa.select(t.apps.c.name, t.workspaces.c.name.label("workspace"))
        .select_from(APP_FROM)
        .where(t.apps.c.id == app_id)
    ).one()
    change = DesiredChange(
        revision=next_revision(conn),
        app_id=app_id,
        workspace=names.workspace,
        app=names.name,
        build_id=build.id if build else None,
        image_ref=build.image_ref if build else None,
        image_digest=build.image_digest if build else None,
        commit_sha=commit_sha,
        reason=reason,
        note=note,
        actor=actor,
        pinned=False,
        run_id=run_id,
        at=utcnow(),
        environment=environment,
    )
    conn.execute(t.desired_changes.insert().values(**change.model_dump()))
    record_desired_event(conn, change)
    # the GitHub deployment outbox, in the same transaction, as production's changes
    record_deployment(conn, app_id, environment, change.revision, change.build_id, commit_sha, reason)
    return change


def advance_preview(conn: sa.Connection, build: Build, actor: str, run_id: str | None = None) -> Advance:
    """A preview build's success moves its own environment, if the pull request is still open and no newer
    build of it got there first; production's desired state stays as it is."""
    lock_app(conn, build.app_id)
    found = read_preview(conn, build.app_id, build.pr_number or 0)
    production = read_desired(conn, build.app_id)
    if found is None or found.state != "open" or (found.desired_build_id or 0) > build.id:
        return Advance(False, production)
    note = f"preview build {build.id} of {build.commit_sha[:12]} (pull request #{found.number})"
    change = append_change(conn, build.app_id, build.environment, build, build.commit_sha, "build", note, actor, run_id)
    conn.execute(
        t.previews.update()
        .where(t.previews.c.app_id == build.app_id, t.previews.c.number == found.number)
        .values(desired_build_id=build.id, desired_revision=change.revision, updated_at=utcnow())
    )
    return Advance(True, production, change)


def _queue_preview(
    conn: sa.Connection, app: App, number: int, sha: str, fork: bool, delivery_id: str | None, actor: str
) -> tuple[Build, bool]:
    environment = preview_environment(number)
    # A fork's build never reads the build cache: a layer cached by a build that had the app's secrets must not
    # reach code the fork's author wrote.
    build, created = enqueue_in(
        conn,
        app,
        preview_ref(number),
        sha,
        "pull_request",
        delivery_id,
        actor,
        no_cache=fork,
        preview=Preview(number, environment, fork),
    )
    where = (t.previews.c.app_id == app.id) & (t.previews.c.number == number)
    conn.execute(t.previews.update().where(where).values(build_id=build.id))
    return build, created


def _apply_pull(conn: sa.Connection, app: App, pull: PullRequest, delivery_id: str) -> PullResult:
    lock_app(conn, app.id)
    found = read_preview(conn, app.id, pull.number)
    environment = preview_environment(pull.number)
    match decide_pull(pull, _recorded(found), app.preview_label):
        case IgnorePull(reason=reason):
            return PullResult(app, "ignored", reason)
        case HoldPreview(sha=sha, reason=reason):
            _save(conn, app, pull, found, state="open", held_sha=sha, held_reason=reason, closed_at=None)
            if found is not None and found.head_sha != sha:
                _stop_environment(
                    conn, app.id, environment, f"superseded by {sha[:12]}, held for approval", pull.sender
                )
            return PullResult(app, "held", reason)
        case ClosePreview(reason=reason, teardown=teardown):
            if found is None:
                return PullResult(app, "ignored", f"{reason}; it had no preview")
            _save(conn, app, pull, found, state="closed", closed_at=utcnow(), held_sha=None, desired_build_id=None)
            _stop_environment(conn, app.id, environment, reason, pull.sender)
            if teardown:
                append_change(conn, app.id, environment, None, pull.head_sha, "preview_closed", reason, pull.sender)
            return PullResult(app, "closed", reason)
        case BuildPreview(sha=sha, reason=reason, approved_by=approved_by):
            approval = {"approved_sha": sha, "approved_by": approved_by, "approved_at": utcnow()} if approved_by else {}
            _save(conn, app, pull, found, state="open", held_sha=None, held_reason=None, closed_at=None, **approval)
            build, created = _queue_preview(conn, app, pull.number, sha, pull.fork, delivery_id, pull.sender)
            return PullResult(app, "build", reason, build, created)


class Previews(StoreBase):
    """Pull requests of apps with previews: events in, approvals, listings."""

    def record_pull_request(self, delivery_id: str, apps: Sequence[App], pull: PullRequest) -> PullOutcome:
        """Record a pull_request delivery and act on it for every app, atomically; a redelivery does nothing."""
        try:
            with self._tx() as conn:
                conn.execute(
                    t.webhook_deliveries.insert().values(
                        delivery_id=delivery_id, event="pull_request", build_ids=[], received_at=utcnow()
                    )
                )
                results = [_apply_pull(conn, app, pull, delivery_id) for app in apps]
                ids = [r.build.id for r in results if r.build is not None]
                conn.execute(
                    t.webhook_deliveries.update()
                    .where(t.webhook_deliveries.c.delivery_id == delivery_id)
                    .values(build_ids=ids)
                )
                return PullOutcome(False, results, ids)
        except IntegrityError:
            with self.engine.connect() as conn:
                known = conn.execute(
                    sa.select(t.webhook_deliveries.c.build_ids).where(t.webhook_deliveries.c.delivery_id == delivery_id)
                ).scalar()
                if known is None:
                    raise
                return PullOutcome(True, [], list(known))

    def approve_preview(self, app: App, number: int, actor: str) -> tuple[Build, PreviewRecord]:
        """A person approves the held head commit of a pull request: its preview build is queued. Answers the build
        and the pull request as it now stands (ChangeRefused when nothing waits)."""
        with self._tx() as conn:
            lock_app(conn, app.id)
            found = read_preview(conn, app.id, number)
            decision = decide_approval(number, _recorded(found))
            if isinstance(decision, IgnorePull) or found is None:
                raise ChangeRefused(decision.reason)
            where = (t.previews.c.app_id == app.id) & (t.previews.c.number == number)
            now = utcnow()
            conn.execute(
                t.previews.update()
                .where(where)
                .values(
                    approved_sha=decision.sha,
                    approved_by=actor,
                    approved_at=now,
                    held_sha=None,
                    held_reason=None,
                    updated_at=now,
                )
            )
            build, _ = _queue_preview(conn, app, number, decision.sha, found.fork, None, actor)
            record = read_preview(conn, app.id, number)
            if record is None:
                raise RuntimeError(f"pull request #{number} of app {app.id} vanished inside its own transaction")
            return build, record

    def preview_states(self) -> list[DesiredState]:
        """What every open preview environment should run, oldest pull request first."""
        query = (
            sa.select(
                t.previews,
                t.builds.c.image_ref,
                t.builds.c.image_digest,
                t.builds.c.commit_time,
                t.builds.c.commit_sha.label("desired_sha"),
                t.workspaces.c.name.label("workspace"),
                t.apps.c.name.label("app"),
            )
            .select_from(
                t.previews.join(APP_FROM, t.apps.c.id == t.previews.c.app_id).join(
                    t.builds, t.builds.c.id == t.previews.c.desired_build_id
                )
            )
            .where(t.previews.c.state == "open")
            .order_by(t.previews.c.app_id, t.previews.c.number)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DesiredState(
                app_id=r.app_id,
                workspace=r.workspace,
                app=r.app,
                image_ref=r.image_ref,
                image_digest=r.image_digest,
                commit_sha=r.desired_sha,
                commit_time=aware(r.commit_time),
                build_id=r.desired_build_id,
                updated_at=aware(r.updated_at) or utcnow(),
                reason="build",
                revision=r.desired_revision,
                environment=preview_environment(r.number),
            )
            for r in rows
        ]

    def preview(self, app_id: int, number: int) -> PreviewRecord | None:
        with self.engine.connect() as conn:
            return read_preview(conn, app_id, number)

    def previews_of(self, app_id: int | None = None, *, open_only: bool = False) -> list[PreviewRecord]:
        query = _PREVIEW_SELECT.order_by(t.previews.c.app_id, t.previews.c.number)
        if app_id is not None:
            query = query.where(t.previews.c.app_id == app_id)
        if open_only:
            query = query.where(t.previews.c.state == "open")
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query)]
