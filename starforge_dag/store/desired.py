"""Desired state: the image each app should run. `set_desired` is its only writer."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ..core.models import Build, DesiredState, utcnow
from . import schema as t
from .rows import APP_FROM, StoreBase, aware, for_update, get_build, to_model


def _order_key(commit_time: datetime | None, build_id: int) -> tuple[datetime, int]:
    return (commit_time or datetime.min.replace(tzinfo=UTC), build_id)


def lock_app(conn: sa.Connection, app_id: int) -> None:
    """Serialize desired-state writers of one app on its row (which always exists, unlike desired_state's)."""
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
    )
    updated = conn.execute(t.desired_state.update().where(t.desired_state.c.app_id == app_id).values(**values))
    if updated.rowcount == 0:
        conn.execute(t.desired_state.insert().values(app_id=app_id, **values))
    desired = read_desired(conn, app_id)
    assert desired is not None
    return desired


def advance_desired(conn: sa.Connection, build: Build, actor: str) -> tuple[bool, DesiredState | None]:
    """Move desired state to the build's image unless a newer commit is already desired (invariant 2)."""
    lock_app(conn, build.app_id)
    current = read_desired(conn, build.app_id)
    if current is not None and _order_key(build.commit_time, build.id) <= _order_key(
        aware(current.commit_time), current.build_id
    ):
        return False, current
    return True, set_desired(conn, build.app_id, build, f"build {build.id} of {build.commit_sha[:12]}", actor)


class Desired(StoreBase):
    """Reads and forward-only moves of desired state."""

    def update_desired_state(self, build_id: int, actor: str = "store") -> tuple[bool, DesiredState | None]:
        """Point the app at this build's image unless a newer commit is already desired (invariant 2)."""
        with self._tx() as conn:
            return advance_desired(conn, get_build(conn, build_id), actor)

    def desired_state(self, app_id: int) -> DesiredState | None:
        with self.engine.connect() as conn:
            return read_desired(conn, app_id)
