"""The build queue: webhook deliveries and manual requests in, claims by the sensor out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..core.models import PRODUCTION, App, Build, utcnow
from ..core.previews import preview_gets
from ..core.pushes import (
    AskToStop,
    EndQueued,
    Enqueue,
    Join,
    PushFacts,
    ReuseImage,
    SweepFacts,
    decide_push,
    settings_key,
    sweep,
)
from ..core.states import BuildState
from . import schema as t
from .apps import AppArchived
from .desired import read_desired, set_desired
from .github import remember_seen
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


@dataclass(frozen=True)
class Preview:
    """A build of a pull request's head in its own environment; a fork's gets no secrets."""

    number: int
    environment: str
    fork: bool


KNOWN = (*t.ACTIVE_STATES, BuildState.SUCCEEDED.value, BuildState.SUPERSEDED.value)
# Builds GitHub asked for wait for the commit's checks when the app says so; a person's manual build never does.
WAITING_TRIGGERS = ("push", "reconcile")


def waits_for_checks(app: App, trigger: str) -> bool:
    return app.wait_for_checks and trigger in WAITING_TRIGGERS


def _active_for_commit(conn: sa.Connection, app_id: int, sha: str, environment: str = PRODUCTION) -> Build | None:
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app_id,
            t.builds.c.environment == environment,
            t.builds.c.commit_sha == sha,
            t.builds.c.status.in_(t.ACTIVE_STATES),
        )
    ).first()
    return to_build(row) if row else None


def _latest_of_commit(
    conn: sa.Connection, app_id: int, sha: str, statuses: Sequence[str], environment: str = PRODUCTION
) -> Build | None:
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app_id,
            t.builds.c.environment == environment,
            t.builds.c.commit_sha == sha,
            t.builds.c.status.in_(statuses),
        )
        .order_by(t.builds.c.id.desc())
        .limit(1)
    ).first()
    return to_build(row) if row else None


def _settings_key(app: App, variables: Sequence[sa.Row]) -> str:
    return settings_key(app, [(r.name, r.secret, r.fingerprint) for r in variables])


def _reusable_image(conn: sa.Connection, app: App, sha: str) -> Build | None:
    """The newest succeeded production build of this commit made with the app's current build settings."""
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app.id,
            t.builds.c.environment == PRODUCTION,
            t.builds.c.commit_sha == sha,
            t.builds.c.status == BuildState.SUCCEEDED.value,
            t.builds.c.settings_key == _settings_key(app, resolved_versions(conn, app)),
            t.builds.c.image_digest.is_not(None),
        )
        .order_by(t.builds.c.id.desc())
        .limit(1)
    ).first()
    return to_build(row) if row else None


def _active_of_ref(conn: sa.Connection, app_id: int, ref: str) -> list[Build]:
    query = BUILD_SELECT.where(
        t.builds.c.app_id == app_id, t.builds.c.ref == ref, t.builds.c.status.in_(t.ACTIVE_STATES)
    ).order_by(t.builds.c.id)
    return [to_build(r) for r in conn.execute(query)]


def _push_facts(
    conn: sa.Connection,
    app: App,
    ref: str,
    sha: str,
    trigger: str,
    commit_time: datetime | None,
    forced: bool,
    environment: str = PRODUCTION,
) -> PushFacts:
    """Everything `decide_push` weighs, read after the app's lock in the enqueue's own transaction.

    The commit's builds and the ref's active ones come in one query; a reusable image matters to a force-push only.
    A preview is weighed within its own environment: production's builds and desired state are not its rivals.
    """
    production = environment == PRODUCTION
    query = BUILD_SELECT.where(
        t.builds.c.app_id == app.id,
        t.builds.c.environment == environment,
        sa.or_(t.builds.c.commit_sha == sha, sa.and_(t.builds.c.ref == ref, t.builds.c.status.in_(t.ACTIVE_STATES))),
    ).order_by(t.builds.c.id.desc())
    builds = [to_build(r) for r in conn.execute(query)]
    of_commit = [b for b in builds if b.commit_sha == sha]
    facts = PushFacts(
        ref=ref,
        sha=sha,
        trigger=trigger,
        commit_time=commit_time,
        forced=forced,
        active=next((b for b in of_commit if b.status.value in t.ACTIVE_STATES), None),
        seen=next((b for b in of_commit if b.status.value in KNOWN), None),
        rivals=[b for b in reversed(builds) if b.ref == ref and b.status.value in t.ACTIVE_STATES],
        desired=read_desired(conn, app.id) if production else None,
    )
    return replace(facts, image=_reusable_image(conn, app, sha)) if facts.force_push and production else facts


def _sweep(conn: sa.Connection, app: App, head: Build, actor: str, *, created: bool, forced_ref: str | None) -> None:
    """End or stop the builds the push's head makes obsolete: of its ref, or of the whole app on a force-push."""
    query = BUILD_SELECT.where(
        t.builds.c.app_id == app.id,
        t.builds.c.environment == head.environment,
        t.builds.c.id != head.id,
        t.builds.c.commit_sha != head.commit_sha,
        t.builds.c.status.in_(t.ACTIVE_STATES),
    ).order_by(t.builds.c.id)
    if forced_ref is None:
        query = query.where(t.builds.c.ref == head.ref)
    others = [to_build(r) for r in conn.execute(for_update(conn, query))]
    facts = SweepFacts(head, others, cancel_running=app.cancel_running, created=created, forced_ref=forced_ref)
    for action in sweep(facts):
        match action:
            case EndQueued(build_id=build_id, reason=reason, state=state):
                set_state(conn, build_id, state, BuildState.SUPERSEDED, reason, actor)
            case AskToStop(build_id=build_id, reason=reason):
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
    no_cache: bool = False,
    state: BuildState = BuildState.QUEUED,
    preview: Preview | None = None,
) -> Build | None:
    """A new queued (or waiting) build, or None when a concurrent enqueue of the same commit holds the active slot.

    A preview build is queued with the variables a preview may get (`preview_gets`), and only those.
    """
    now = utcnow()
    variables = resolved_versions(conn, app)
    if preview is not None:
        variables = [r for r in variables if preview_gets(r.secret, r.for_previews, preview.fork)]
    try:
        with conn.begin_nested():
            build_id = conn.execute(
                t.builds.insert()
                .values(
                    app_id=app.id,
                    ref=ref,
                    commit_sha=sha,
                    status=state.value,
                    trigger=trigger,
                    delivery_id=delivery_id,
                    commit_time=commit_time,
                    settings_key=_settings_key(app, variables),
                    rewind=rewind,
                    no_cache=no_cache,
                    environment=preview.environment if preview else PRODUCTION,
                    pr_number=preview.number if preview else None,
                    fork=preview.fork if preview else False,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.builds.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    record_build_variables(conn, build_id, variables)
    reason = f"{trigger} of {ref} at {sha[:12]}"
    if state == BuildState.WAITING:
        reason += ": waiting for the commit's checks"
    record_transition(conn, build_id, None, state, reason, actor, None)
    return get_build(conn, build_id)


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
    no_cache: bool = False,
    preview: Preview | None = None,
) -> tuple[Build, bool]:
    """Queue a build of `sha` for the app, or answer with the build that already covers it (`decide_push`)."""
    archived = sa.select(t.apps.c.archived_at).where(t.apps.c.id == app.id)  # locks the app's row, as `lock_app`
    if conn.execute(for_update(conn, archived, of=t.apps)).scalar() is not None:
        raise AppArchived(f"app {app.workspace}/{app.name} was removed: it builds nothing")
    environment = preview.environment if preview else PRODUCTION
    facts = _push_facts(conn, app, ref, sha, trigger, as_utc(commit_time), forced, environment)
    match decide_push(facts):
        case Join(build_id=build_id, rewind=rewind, sweep=then_sweep):
            if rewind:
                conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(rewind=True))
            read = {b.id: b for b in (facts.active, facts.seen) if b is not None and not rewind}
            head, created = read.get(build_id) or get_build(conn, build_id), False
        case ReuseImage(build_id=build_id, reason=reason, note=note, sweep=then_sweep):
            head, created = get_build(conn, build_id), False
            set_desired(conn, app.id, head, reason, note, actor)
        case Enqueue(commit_time=when, rewind=rewind, behind=behind, sweep=then_sweep):
            state = BuildState.WAITING if waits_for_checks(app, trigger) else BuildState.QUEUED
            build = _insert(
                conn,
                app,
                ref,
                sha,
                trigger,
                delivery_id,
                actor,
                when,
                rewind=rewind,
                no_cache=no_cache,
                state=state,
                preview=preview,
            )
            if build is None and facts.force_push:
                raise RuntimeError(f"build of {sha[:12]} for app {app.id} appeared while the app was locked")
            if build is None:  # a concurrent enqueue of the commit won the active slot (SQLite without a row lock)
                active = _active_for_commit(conn, app.id, sha, environment)
                if active is None:
                    raise RuntimeError(f"build of {sha[:12]} for app {app.id} could not be queued")
                return active, False
            if behind is not None:
                set_state(conn, build.id, build.status, BuildState.SUPERSEDED, behind, actor)
                return get_build(conn, build.id), False
            head, created = build, True
    if then_sweep:
        _sweep(conn, app, head, actor, created=created, forced_ref=ref if facts.force_push else None)
    return head, created


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
        seen: Sequence[tuple[int, str, str]] = (),
    ) -> DeliveryOutcome:
        """Record a webhook delivery and enqueue its builds atomically; a redelivery enqueues nothing.

        `commit_time` (the pushed head commit's time) orders commits; `forced` marks a force-push; `seen` holds
        (app id, commit, decision) to remember in the same transaction, where a commit's first decision stays.
        """
        try:
            with self._tx() as conn:
                conn.execute(
                    t.webhook_deliveries.insert().values(
                        delivery_id=delivery_id, event=event, build_ids=[], received_at=utcnow()
                    )
                )
                if seen:
                    remember_seen(conn, seen)
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
        no_cache: bool = False,
    ) -> EnqueueOutcome:
        """Queue one build (a manual build rebuilds an ended commit; see `enqueue_in` for pushes)."""
        with self._tx() as conn:
            build, created = enqueue_in(
                conn, app, ref, sha, trigger, None, actor, commit_time=commit_time, forced=forced, no_cache=no_cache
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
