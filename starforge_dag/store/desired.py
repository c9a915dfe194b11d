"""Desired state: the image each app should run. `set_desired` is its only writer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..core.models import Build, DesiredState, utcnow
from ..core.states import BuildState, check_transition
from . import schema as t
from .rows import APP_FROM, NotFound, StoreBase, aware, for_update, get_build, to_model
from .transitions import end_as_requested, locked_state, set_state


@dataclass
class SuccessOutcome:
    """What `succeed` did: the build as it ended, and whether desired state now points at it."""

    build: Build
    moved: bool
    desired: DesiredState | None


def _order_key(commit_time: datetime | None, build_id: int) -> tuple[datetime, int]:
    return (aware(commit_time) or datetime.min.replace(tzinfo=UTC), build_id)


def lock_app(conn: sa.Connection, app_id: int) -> None:
    """Serialize the app's enqueues and desired-state writers on its row (it always exists, unlike desired_state's)."""
    conn.execute(for_update(conn, sa.select(t.apps.c.id).where(t.apps.c.id == app_id), of=t.apps))


def read_desired(conn: sa.Connection, app_id: int) -> DesiredState | None:
    row = conn.execute(
        sa.select(t.desired_state, t.apps.c.name.label("app"), t.workspaces.c.name.label("workspace"))
        .select_from(t.desired_state.join(APP_FROM, t.apps.c.id == t.desired_state.c.app_id))
        .where(t.desired_state.c.app_id == app_id)
    ).first()
    return None if row is None else to_model(DesiredState, row)


def set_desired(conn: sa.Connection, app_id: int, build: Build, reason: str, actor: str) -> DesiredState:
    """Point the app at the build's image: the one write of desired state (callers hold the app's lock)."""
    if not build.image_digest or not build.image_ref:
        raise ValueError(f"build {build.id} has no pushed image")
    if build.app_id != app_id:
        raise ValueError(f"build {build.id} belongs to app {build.app_id}, not {app_id}")
    values = dict(
        build_id=build.id,
        image_ref=build.image_ref,
        image_digest=build.image_digest,
        commit_sha=build.commit_sha,
        commit_time=build.commit_time,
        updated_at=utcnow(),
        reason=reason,
        actor=actor,
    )
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(t.desired_state)
    conn.execute(insert.values(app_id=app_id, **values).on_conflict_do_update(index_elements=["app_id"], set_=values))
    desired = read_desired(conn, app_id)
    if desired is None:
        raise RuntimeError(f"desired state of app {app_id} vanished inside its own transaction")
    return desired


def _requested_by(conn: sa.Connection, build_id: int) -> str:
    """Who queued the build (its first transition's actor)."""
    actor = conn.execute(
        sa.select(t.build_transitions.c.actor)
        .where(t.build_transitions.c.build_id == build_id)
        .order_by(t.build_transitions.c.id)
        .limit(1)
    ).scalar()
    return actor or "unknown"


def advance_desired(conn: sa.Connection, build: Build, actor: str) -> tuple[bool, DesiredState | None]:
    """Move desired state to the build's image unless a newer commit is already desired (invariant 2).

    A rewind build (a force-push back to an older commit) moves it backwards, once: only past what was desired
    before it was queued.
    """
    lock_app(conn, build.app_id)
    current = read_desired(conn, build.app_id)
    if current is None or _order_key(build.commit_time, build.id) > _order_key(current.commit_time, current.build_id):
        reason = f"build {build.id} of {build.commit_sha[:12]}"
    elif build.rewind and current.build_id < build.id:
        reason = f"rewind to {build.commit_sha[:12]} (force-push, build {build.id})"
        actor = _requested_by(conn, build.id)
    else:
        return False, current
    return True, set_desired(conn, build.app_id, build, reason, actor)


class Desired(StoreBase):
    """Reads and moves of desired state, and the atomic success of a build."""

    def update_desired_state(self, build_id: int, actor: str = "store") -> tuple[bool, DesiredState | None]:
        """Point the app at this build's image unless a newer commit is already desired (invariant 2)."""
        with self._tx() as conn:
            return advance_desired(conn, get_build(conn, build_id), actor)

    def desired_state(self, app_id: int) -> DesiredState | None:
        with self.engine.connect() as conn:
            return read_desired(conn, app_id)

    def succeed(
        self, build_id: int, image_ref: str, digest: str, reason: str, actor: str, *, run_id: str | None = None
    ) -> SuccessOutcome:
        """Record the image, move desired state and mark the build succeeded, all in one transaction.

        Idempotent: a retry after a lost commit finds the build succeeded and reports what it did. A build that
        was asked to stop (canceled, superseded) ends that way instead, without touching desired state.
        """
        with self._tx() as conn:
            app_id = conn.execute(sa.select(t.builds.c.app_id).where(t.builds.c.id == build_id)).scalar()
            if app_id is None:
                raise NotFound(f"no build with id {build_id}")
            lock_app(conn, app_id)  # app before build row: the lock order of enqueues
            current = locked_state(conn, build_id)
            if current == BuildState.SUCCEEDED:
                desired = read_desired(conn, app_id)
                moved = desired is not None and desired.build_id == build_id
                return SuccessOutcome(get_build(conn, build_id), moved, desired)
            ended = end_as_requested(conn, build_id, current, actor, run_id)
            if ended is not None:
                return SuccessOutcome(ended, False, read_desired(conn, app_id))
            check_transition(current, BuildState.SUCCEEDED)
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id)
                .values(image_ref=image_ref, image_digest=digest, updated_at=utcnow())
            )
            moved, desired = advance_desired(conn, get_build(conn, build_id), actor)
            set_state(conn, build_id, current, BuildState.SUCCEEDED, reason, actor, run_id)
            return SuccessOutcome(get_build(conn, build_id), moved, desired)
