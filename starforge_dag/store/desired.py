"""Desired state: the image each app should run, and its change feed. `set_desired` is its only writer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..core.deployments import environment_of
from ..core.desired import (
    AUTOMATIC,
    AdvanceFacts,
    Hold,
    Keep,
    Mark,
    Move,
    Refuse,
    decide_advance,
    decide_pin,
    decide_rollback,
    decide_unpin,
    sets_mark,
)
from ..core.models import Build, ChangeReason, DesiredChange, DesiredState, utcnow
from ..core.states import BuildState, check_transition
from . import schema as t
from .deployments import record_deployment
from .notifications import record_desired_event
from .rows import APP_FROM, BUILD_SELECT, NotFound, StoreBase, aware, for_update, get_build, to_build, to_model
from .transitions import end_as_requested, locked_state, set_state


class ChangeRefused(ValueError):
    """An operator's change of desired state that cannot be made (wrong build, image gone, not pinned)."""


@dataclass
class SuccessOutcome:
    """What `succeed` did: the build as it ended, whether desired state now points at it, and the feed entry."""

    build: Build
    moved: bool
    desired: DesiredState | None
    change: DesiredChange | None = None


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def lock_app(conn: sa.Connection, app_id: int) -> None:
    """Serialize the app's enqueues and desired-state writers on its row (it always exists, unlike desired_state's)."""
    conn.execute(for_update(conn, sa.select(t.apps.c.id).where(t.apps.c.id == app_id), of=t.apps))


_DESIRED_SELECT = sa.select(
    t.desired_state, t.apps.c.name.label("app"), t.workspaces.c.name.label("workspace")
).select_from(t.desired_state.join(APP_FROM, t.apps.c.id == t.desired_state.c.app_id))


def read_desired(conn: sa.Connection, app_id: int) -> DesiredState | None:
    row = conn.execute(_DESIRED_SELECT.where(t.desired_state.c.app_id == app_id)).first()
    return None if row is None else to_model(DesiredState, row)


def next_revision(conn: sa.Connection) -> int:
    """The next feed revision; the counter row stays locked until this transaction ends, so revisions are gap-free
    and become visible in order (a reader that saw N+1 has seen N)."""
    seed = sa.select(sa.func.coalesce(sa.func.max(t.desired_changes.c.revision), 0) + 1).scalar_subquery()
    stmt = (
        _insert(conn, t.desired_revision)
        .values(id=1, revision=seed)
        .on_conflict_do_update(index_elements=["id"], set_={"revision": t.desired_revision.c.revision + 1})
        .returning(t.desired_revision.c.revision)
    )
    return int(conn.execute(stmt).scalar_one())


def set_desired(
    conn: sa.Connection,
    app_id: int,
    build: Build,
    reason: ChangeReason,
    note: str,
    actor: str,
    *,
    run_id: str | None = None,
    pinned: bool | None = None,
) -> DesiredChange:
    """Point the app at the build's image and append the change to the feed: the one write of desired state.

    Callers hold the app's lock. Automatic changes (build, rewind) also become the mark later automatic advances
    must pass; operator changes (rollback, pin, unpin) leave that mark alone.
    """
    if not build.image_digest or not build.image_ref:
        raise ValueError(f"build {build.id} has no pushed image")
    if build.app_id != app_id:
        raise ValueError(f"build {build.id} belongs to app {build.app_id}, not {app_id}")
    if build.image_deleted_at is not None:
        raise ChangeRefused(f"the image of build {build.id} was deleted by image retention")
    current = conn.execute(sa.select(t.desired_state.c.app_id).where(t.desired_state.c.app_id == app_id)).first()
    now = utcnow()
    values: dict[str, object] = dict(
        build_id=build.id,
        image_ref=build.image_ref,
        image_digest=build.image_digest,
        commit_sha=build.commit_sha,
        commit_time=build.commit_time,
        updated_at=now,
        reason=reason,
        note=note,
        actor=actor,
    )
    if sets_mark(reason, first=current is None):
        values.update(high_build_id=build.id, high_commit_time=build.commit_time)
    if pinned is not None:
        values["pinned"] = pinned
    if reason == "unpin":
        values["held_build_id"] = None
    values["revision"] = revision = next_revision(conn)
    conn.execute(
        _insert(conn, t.desired_state)
        .values(app_id=app_id, **values)
        .on_conflict_do_update(index_elements=["app_id"], set_=values)
    )
    desired = read_desired(conn, app_id)
    if desired is None:
        raise RuntimeError(f"desired state of app {app_id} vanished inside its own transaction")
    change = DesiredChange(
        revision=revision,
        app_id=app_id,
        workspace=desired.workspace,
        app=desired.app,
        build_id=build.id,
        image_ref=build.image_ref,
        image_digest=build.image_digest,
        commit_sha=build.commit_sha,
        reason=reason,
        note=note,
        actor=actor,
        pinned=desired.pinned,
        run_id=run_id,
        at=now,
    )
    conn.execute(t.desired_changes.insert().values(**change.model_dump()))
    record_desired_event(conn, change)
    record_deployment(
        conn, app_id, environment_of(change), revision, build.id, build.commit_sha, reason
    )  # the GitHub deployment outbox, in the same transaction
    return change


def _requested_by(conn: sa.Connection, build_id: int) -> str:
    """Who queued the build (its first transition's actor)."""
    actor = conn.execute(
        sa.select(t.build_transitions.c.actor)
        .where(t.build_transitions.c.build_id == build_id)
        .order_by(t.build_transitions.c.id)
        .limit(1)
    ).scalar()
    return actor or "unknown"


def _reached(conn: sa.Connection, app_id: int) -> Mark | None:
    """The mark automatic advances must pass, as recorded with the app's desired state."""
    row = conn.execute(
        sa.select(t.desired_state.c.high_build_id, t.desired_state.c.high_commit_time).where(
            t.desired_state.c.app_id == app_id
        )
    ).first()
    if row is None or row.high_build_id is None:
        return None
    return Mark(row.high_build_id, aware(row.high_commit_time))


@dataclass
class Advance:
    moved: bool
    desired: DesiredState | None
    change: DesiredChange | None = None
    held: bool = False


def advance_desired(conn: sa.Connection, build: Build, actor: str, run_id: str | None = None) -> Advance:
    """Move desired state to the build's image unless a newer commit was already reached (`decide_advance`)."""
    lock_app(conn, build.app_id)
    current = read_desired(conn, build.app_id)
    reached = _reached(conn, build.app_id) if current is not None else None
    match decide_advance(AdvanceFacts(build, current, reached)):
        case Keep():
            return Advance(False, current)
        case Hold():
            conn.execute(
                t.desired_state.update()
                .where(t.desired_state.c.app_id == build.app_id)
                .values(held_build_id=build.id, high_build_id=build.id, high_commit_time=build.commit_time)
            )
            conn.execute(t.builds.update().where(t.builds.c.id == build.id).values(held_by_pin=True))
            return Advance(False, read_desired(conn, build.app_id), held=True)
        case Move(reason=reason, note=note, as_requester=as_requester):
            by = _requested_by(conn, build.id) if as_requester else actor
            change = set_desired(conn, build.app_id, build, reason, note, by, run_id=run_id)
            return Advance(True, read_desired(conn, build.app_id), change)


def _apply(conn: sa.Connection, app_id: int, decision: Move | Refuse, actor: str) -> DesiredChange:
    """An operator's change as decided: made and recorded, or refused with the reason."""
    match decision:
        case Refuse(why=why):
            raise ChangeRefused(why)
        case Move(build_id=build_id, reason=reason, note=note, pinned=pinned):
            return set_desired(conn, app_id, get_build(conn, build_id), reason, note, actor, pinned=pinned)


def _to_change(row: sa.Row) -> DesiredChange:
    return to_model(DesiredChange, row)


class Desired(StoreBase):
    """Reads and moves of desired state, its feed, operator actions, and the atomic success of a build."""

    def desired_state(self, app_id: int) -> DesiredState | None:
        with self.engine.connect() as conn:
            return read_desired(conn, app_id)

    def all_desired(self) -> tuple[list[DesiredState], int]:
        """Every app's desired state and the latest revision, read in one snapshot-consistent statement each."""
        with self.engine.connect() as conn:
            rows = conn.execute(_DESIRED_SELECT.order_by(t.desired_state.c.app_id)).all()
            latest = conn.execute(sa.select(sa.func.max(t.desired_state.c.revision))).scalar()
        return [to_model(DesiredState, r) for r in rows], int(latest or 0)

    def latest_revision(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.desired_changes.c.revision))).scalar() or 0)

    def changes_after(
        self,
        after: int,
        limit: int = 500,
        app_id: int | None = None,
        workspace: str | None = None,
        environment: str | None = None,
    ) -> list[DesiredChange]:
        """Feed entries with a revision above `after`, oldest first (of one app, workspace or environment, when
        given)."""
        query = (
            sa.select(t.desired_changes)
            .where(t.desired_changes.c.revision > after)
            .order_by(t.desired_changes.c.revision)
            .limit(limit)
        )
        if app_id is not None:
            query = query.where(t.desired_changes.c.app_id == app_id)
        if workspace is not None:
            query = query.where(t.desired_changes.c.workspace == workspace)
        if environment is not None:
            query = query.where(t.desired_changes.c.environment == environment)
        with self.engine.connect() as conn:
            return [_to_change(r) for r in conn.execute(query)]

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
                change_row = conn.execute(
                    sa.select(t.desired_changes)
                    .where(t.desired_changes.c.build_id == build_id, t.desired_changes.c.reason.in_(AUTOMATIC))
                    .order_by(t.desired_changes.c.revision)
                    .limit(1)
                ).first()
                change = _to_change(change_row) if change_row is not None else None
                moved = desired is not None and desired.build_id == build_id
                if get_build(conn, build_id).preview:  # a preview moved its own environment, if anything
                    moved = change is not None
                return SuccessOutcome(get_build(conn, build_id), moved, desired, change)
            ended = end_as_requested(conn, build_id, current, actor, run_id)
            if ended is not None:
                return SuccessOutcome(ended, False, read_desired(conn, app_id))
            check_transition(current, BuildState.SUCCEEDED)
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id)
                .values(image_ref=image_ref, image_digest=digest, updated_at=utcnow())
            )
            built = get_build(conn, build_id)
            if built.preview:
                from .previews import advance_preview  # previews build on this module

                result = advance_preview(conn, built, actor, run_id)
            else:
                result = advance_desired(conn, built, actor, run_id)
            set_state(conn, build_id, current, BuildState.SUCCEEDED, reason, actor, run_id)
            return SuccessOutcome(get_build(conn, build_id), result.moved, result.desired, result.change)

    # -- operator actions: they may go backwards, and are recorded with actor and reason ---------------------------

    def rollback(self, app_id: int, build_id: int, actor: str, note: str | None = None) -> DesiredChange:
        """Point the app at an earlier succeeded build's image (the registry was asked first, by the caller)."""
        with self._tx() as conn:
            lock_app(conn, app_id)
            current = read_desired(conn, app_id)
            decision = decide_rollback(app_id, build_id, _find_build(conn, build_id), current, note)
            return _apply(conn, app_id, decision, actor)

    def check_rollback(self, app_id: int, build_id: int) -> Build:
        """The build a rollback would go to, or ChangeRefused saying why it cannot be."""
        with self.engine.connect() as conn:
            return rollback_target(conn, app_id, build_id)

    def pin(self, app_id: int, actor: str, note: str | None = None) -> DesiredChange:
        """Hold the app on its current image: successful builds are recorded but held until unpin."""
        with self._tx() as conn:
            lock_app(conn, app_id)
            return _apply(conn, app_id, decide_pin(read_desired(conn, app_id), note), actor)

    def unpin(self, app_id: int, actor: str, note: str | None = None) -> DesiredChange:
        """Release a pin: desired state moves to the newest build held meanwhile, if any."""
        with self._tx() as conn:
            lock_app(conn, app_id)
            current = read_desired(conn, app_id)
            held = get_build(conn, current.held_build_id) if current and current.held_build_id else None
            return _apply(conn, app_id, decide_unpin(current, held, note), actor)

    # -- image retention -------------------------------------------------------------------------------------------

    def retention_candidates(self, app_id: int) -> tuple[list[Build], list[DesiredChange], DesiredState | None]:
        """What the retention plan needs for one app: its builds with images, its feed history, its desired state."""
        with self.engine.connect() as conn:
            return _retention_inputs(conn, app_id)

    def mark_images_deleted(self, app_id: int, build_ids: Iterable[int], still_deletable) -> list[Build]:
        """Mark builds' images deleted before the registry is asked, under the app's lock, so no rollback or
        advance can pick them meanwhile; `still_deletable(builds, history, desired)` re-checks the plan."""
        wanted = set(build_ids)
        with self._tx() as conn:
            lock_app(conn, app_id)
            builds, history, desired = _retention_inputs(conn, app_id)
            allowed = set(still_deletable(builds, history, desired)) & wanted
            if not allowed:
                return []
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id.in_(sorted(allowed)), t.builds.c.image_deleted_at.is_(None))
                .values(image_deleted_at=utcnow())
            )
            return [to_build(r) for r in conn.execute(BUILD_SELECT.where(t.builds.c.id.in_(sorted(allowed))))]

    def unmark_image_deleted(self, build_ids: Iterable[int]) -> None:
        """The registry refused a delete: the image is still there, so rollbacks may use it again."""
        ids = sorted(set(build_ids))
        if ids:
            with self._tx() as conn:
                conn.execute(t.builds.update().where(t.builds.c.id.in_(ids)).values(image_deleted_at=None))


def _retention_inputs(conn: sa.Connection, app_id: int) -> tuple[list[Build], list[DesiredChange], DesiredState | None]:
    builds = [
        to_build(r)
        for r in conn.execute(
            BUILD_SELECT.where(
                t.builds.c.app_id == app_id,
                t.builds.c.status == BuildState.SUCCEEDED.value,
                t.builds.c.image_digest.is_not(None),
            ).order_by(t.builds.c.id)
        )
    ]
    history = [
        _to_change(r)
        for r in conn.execute(
            sa.select(t.desired_changes)
            .where(t.desired_changes.c.app_id == app_id)
            .order_by(t.desired_changes.c.revision)
        )
    ]
    return builds, history, read_desired(conn, app_id)


def _find_build(conn: sa.Connection, build_id: int) -> Build | None:
    row = conn.execute(BUILD_SELECT.where(t.builds.c.id == build_id)).first()
    return None if row is None else to_build(row)


def rollback_target(conn: sa.Connection, app_id: int, build_id: int) -> Build:
    """The build a rollback would go to, whatever is desired now; ChangeRefused if there is none."""
    match decide_rollback(app_id, build_id, _find_build(conn, build_id)):
        case Refuse(why=why):
            raise ChangeRefused(why)
        case Move(build_id=target):
            return get_build(conn, target)
