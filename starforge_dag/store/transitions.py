"""Build state changes: every one is checked by the state machine and recorded with reason, actor and time."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..core.errors import IllegalTransition
from ..core.models import Build, Transition, utcnow
from ..core.states import WORKING, BuildState, check_transition
from . import schema as t
from .github import record_status
from .notifications import record_build_event
from .rows import BUILD_SELECT, NotFound, StoreBase, for_update, get_build, to_build, to_model

_ENDED_WITH_ERROR = (
    BuildState.FAILED,
    BuildState.TIMED_OUT,
    BuildState.CANCELED,
    BuildState.SUPERSEDED,
    BuildState.CHECKS_FAILED,
)


def locked_state(conn: sa.Connection, build_id: int) -> BuildState:
    """The build's state, its row locked until the transaction ends."""
    status = conn.execute(for_update(conn, sa.select(t.builds.c.status).where(t.builds.c.id == build_id))).scalar()
    if status is None:
        raise NotFound(f"no build with id {build_id}")
    return BuildState(status)


def set_state(
    conn: sa.Connection,
    build_id: int,
    current: BuildState,
    to: BuildState,
    reason: str,
    actor: str,
    run_id: str | None = None,
    error: str | None = None,
    error_step: str | None = None,
) -> None:
    """Write a (checked) state change and its transition record."""
    values: dict[str, Any] = {"status": to.value, "updated_at": utcnow()}
    if to in WORKING and (current == BuildState.QUEUED or current.terminal):
        values["started_at"] = values["updated_at"]
    if run_id is not None:
        values["run_id"] = run_id
    if to in _ENDED_WITH_ERROR:
        values["error"] = error or reason
        values["error_step"] = error_step
    elif to in WORKING and current.terminal:
        values.update(error=None, error_step=None, cancel_state=None)
    conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(**values))
    record_transition(conn, build_id, current, to, reason, actor, run_id)


def record_transition(
    conn: sa.Connection,
    build_id: int,
    current: BuildState | None,
    to: BuildState,
    reason: str,
    actor: str,
    run_id: str | None,
) -> None:
    conn.execute(
        t.build_transitions.insert().values(
            build_id=build_id,
            from_state=current.value if current else None,
            to_state=to.value,
            reason=reason,
            actor=actor,
            run_id=run_id,
            at=utcnow(),
        )
    )
    record_status(conn, build_id, to, reason, run_id)  # the commit status outbox, in the same transaction
    record_build_event(conn, build_id, current, to, reason)  # and the workspace's notifications


def end_as_requested(
    conn: sa.Connection,
    build_id: int,
    current: BuildState,
    actor: str,
    run_id: str | None = None,
    error_step: str | None = None,
) -> Build | None:
    """End a build that was asked to stop in the state asked for, with the reason first recorded; None if not asked.

    The first recorded reason wins: a user's "stop it" is never replaced by what the backend said when it stopped.
    """
    row = conn.execute(sa.select(t.builds.c.cancel_state, t.builds.c.error).where(t.builds.c.id == build_id)).first()
    if row is None or row.cancel_state is None or current.terminal:
        return None
    to = BuildState(row.cancel_state)
    reason = row.error or f"{to.value} on request"
    set_state(conn, build_id, current, to, reason, actor, run_id, reason, error_step)
    return get_build(conn, build_id)


class Transitions(StoreBase):
    """Moving builds through the state machine, ending them, and cancel requests."""

    def transition(
        self,
        build_id: int,
        to: BuildState | str,
        reason: str,
        actor: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
        error_step: str | None = None,
        resume: bool = False,
    ) -> Build:
        """Move a build to `to` (a no-op when it is already there); illegal moves raise."""
        to = BuildState(to)
        with self._tx() as conn:
            current = locked_state(conn, build_id)
            if current != to:
                check_transition(current, to, resume=resume)
                set_state(conn, build_id, current, to, reason, actor, run_id, error, error_step)
            return get_build(conn, build_id)

    def finish(
        self,
        build_id: int,
        to: BuildState | str,
        reason: str,
        actor: str,
        *,
        run_id: str | None = None,
        error_step: str | None = None,
        only_run_id: str | None = None,
    ) -> Build | None:
        """End a build if it is still active (sensors race the ops); None when already ended.

        A build asked to stop ends in the state asked for, with the reason given then (first reason wins).
        With `only_run_id`, a build that a newer run (a re-execution) has taken over is left alone.
        """
        to = BuildState(to)
        with self._tx() as conn:
            current = locked_state(conn, build_id)
            if current.terminal:
                return None
            if only_run_id is not None:
                owner = conn.execute(sa.select(t.builds.c.run_id).where(t.builds.c.id == build_id)).scalar()
                if owner is not None and owner != only_run_id:
                    return None
            ended = end_as_requested(conn, build_id, current, actor, run_id, error_step)
            if ended is not None:
                return ended
            error = reason if to != BuildState.SUCCEEDED else None
            set_state(conn, build_id, current, to, reason, actor, run_id, error, error_step)
            return get_build(conn, build_id)

    def request_cancel(self, build_id: int, actor: str, reason: str = "canceled by user") -> Build:
        """Cancel now if queued; otherwise flag the running build, which stops at its next check.

        A build already asked to stop keeps the first request's state and reason.
        """
        with self._tx() as conn:
            current = locked_state(conn, build_id)
            if current.terminal:
                raise IllegalTransition(f"build {build_id} already ended ({current.value})")
            if current in (BuildState.WAITING, BuildState.QUEUED):
                set_state(conn, build_id, current, BuildState.CANCELED, reason, actor)
            else:
                conn.execute(
                    t.builds.update()
                    .where(t.builds.c.id == build_id, t.builds.c.cancel_state.is_(None))
                    .values(cancel_state=BuildState.CANCELED.value, error=reason, updated_at=utcnow())
                )
            return get_build(conn, build_id)

    def cancel_state(self, build_id: int) -> BuildState | None:
        """The terminal state a running build was asked to end in, if any."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.builds.c.cancel_state).where(t.builds.c.id == build_id)).scalar()
        return BuildState(value) if value else None

    def cancel_requests(self) -> list[tuple[Build, BuildState]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                BUILD_SELECT.where(t.builds.c.cancel_state.is_not(None), t.builds.c.status.in_(t.ACTIVE_STATES))
            ).all()
        return [(to_build(r), BuildState(r._mapping["cancel_state"])) for r in rows]

    def transitions(self, build_id: int) -> list[Transition]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.build_transitions)
                .where(t.build_transitions.c.build_id == build_id)
                .order_by(t.build_transitions.c.id)
            ).all()
        return [to_model(Transition, r) for r in rows]
