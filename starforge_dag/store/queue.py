"""The build queue: webhook deliveries and manual requests in, claims by the sensor out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..core.models import App, Build, utcnow
from ..core.states import BuildState
from . import schema as t
from .rows import BUILD_SELECT, StoreBase, for_update, get_build, to_build
from .transitions import record_transition, set_state


@dataclass
class DeliveryOutcome:
    redelivery: bool
    builds: list[Build] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


@dataclass
class EnqueueOutcome:
    build: Build
    created: bool


def _active_for_commit(conn: sa.Connection, app_id: int, sha: str) -> Build | None:
    row = conn.execute(
        BUILD_SELECT.where(
            t.builds.c.app_id == app_id, t.builds.c.commit_sha == sha, t.builds.c.status.in_(t.ACTIVE_STATES)
        )
    ).first()
    return to_build(row) if row else None


def _supersede_older(conn: sa.Connection, app: App, ref: str, new_id: int, actor: str) -> None:
    older = conn.execute(
        for_update(
            conn,
            sa.select(t.builds.c.id, t.builds.c.status).where(
                t.builds.c.app_id == app.id,
                t.builds.c.ref == ref,
                t.builds.c.id < new_id,
                t.builds.c.status.in_(t.ACTIVE_STATES),
            ),
        )
    ).all()
    for build_id, status in older:
        reason = f"superseded by build {new_id}"
        if status == BuildState.QUEUED.value:
            set_state(conn, build_id, BuildState.QUEUED, BuildState.SUPERSEDED, reason, actor)
        elif app.cancel_running:
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id, t.builds.c.cancel_state.is_(None))
                .values(cancel_state=BuildState.SUPERSEDED.value, error=reason, updated_at=utcnow())
            )


def enqueue_in(
    conn: sa.Connection, app: App, ref: str, sha: str, trigger: str, delivery_id: str | None, actor: str
) -> tuple[Build, bool]:
    """Queue a build of `sha` unless one is already active for it; older queued builds of the ref are superseded."""
    now = utcnow()
    existing = _active_for_commit(conn, app.id, sha)
    if existing is not None:
        return existing, False
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
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.builds.c.id)
            ).scalar_one()
    except IntegrityError:
        # A concurrent delivery of the same commit won the race for the active slot.
        existing = _active_for_commit(conn, app.id, sha)
        if existing is None:
            raise
        return existing, False
    record_transition(conn, build_id, None, BuildState.QUEUED, f"{trigger} of {ref} at {sha[:12]}", actor, None)
    _supersede_older(conn, app, ref, build_id, actor)
    return get_build(conn, build_id), True


class Queue(StoreBase):
    """Deliveries, enqueues and the sensor's claims."""

    def record_delivery(
        self, delivery_id: str, event: str, wanted: Sequence[tuple[App, str, str]], actor: str = "github"
    ) -> DeliveryOutcome:
        """Record a webhook delivery and enqueue its builds atomically; a redelivery enqueues nothing."""
        try:
            with self._tx() as conn:
                conn.execute(
                    t.webhook_deliveries.insert().values(
                        delivery_id=delivery_id, event=event, build_ids=[], received_at=utcnow()
                    )
                )
                builds, created = [], []
                for app, ref, sha in wanted:
                    build, was_created = enqueue_in(conn, app, ref, sha, "push", delivery_id, actor)
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

    def enqueue(self, app: App, ref: str, sha: str, trigger: str = "manual", actor: str = "api") -> EnqueueOutcome:
        with self._tx() as conn:
            build, created = enqueue_in(conn, app, ref, sha, trigger, None, actor)
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
