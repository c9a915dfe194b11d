"""Notifications in the store: a workspace's webhook endpoints, the outbox written in the transaction of the change
each message tells of (one row per subscribed endpoint), and the log of delivery attempts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..core.models import DesiredChange, utcnow
from ..core.notifications import DESIRED_STATE_CHANGED, build_data, build_event, desired_data
from ..core.states import BuildState
from . import schema as t
from .rows import NotFound, StoreBase, aware, get_build
from .tokens import workspace_id

_LIVE = sa.and_(t.webhook_endpoints.c.disabled_at.is_(None), t.webhook_endpoints.c.deleted_at.is_(None))


@dataclass(frozen=True)
class Endpoint:
    id: int
    workspace: str
    url: str
    events: tuple[str, ...]
    secret_ciphertext: str
    created_at: datetime
    failures: int
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


@dataclass(frozen=True)
class Message:
    """An undelivered notification: what it tells, and where its retries stand."""

    id: int
    endpoint_id: int
    message_id: str
    event: str
    build_id: int | None
    data: dict[str, Any]
    body: str | None
    created_at: datetime
    next_attempt_at: datetime
    attempts: int


@dataclass(frozen=True)
class Attempt:
    """One try at delivering a message, as the delivery log shows it."""

    id: int
    message_id: str
    event: str
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    outcome: str | None


_ENDPOINT_SELECT = sa.select(t.webhook_endpoints, t.workspaces.c.name.label("workspace")).select_from(
    t.webhook_endpoints.join(t.workspaces, t.workspaces.c.id == t.webhook_endpoints.c.workspace_id)
)


def _endpoint(row: sa.Row) -> Endpoint:
    return Endpoint(
        id=row.id,
        workspace=row.workspace,
        url=row.url,
        events=tuple(row.events),
        secret_ciphertext=row.secret_ciphertext,
        created_at=aware(row.created_at) or utcnow(),
        failures=row.failures,
        failing_since=aware(row.failing_since),
        disabled_at=aware(row.disabled_at),
        disabled_reason=row.disabled_reason,
    )


def _message(row: sa.Row) -> Message:
    return Message(
        id=row.id,
        endpoint_id=row.endpoint_id,
        message_id=row.message_id,
        event=row.event,
        build_id=row.build_id,
        data=dict(row.data),
        body=row.body,
        created_at=aware(row.created_at) or utcnow(),
        next_attempt_at=aware(row.next_attempt_at) or utcnow(),
        attempts=row.attempts,
    )


def _subscribed(conn: sa.Connection, ws_id: sa.ColumnElement | int, event: str) -> list[int]:
    rows = conn.execute(
        sa.select(t.webhook_endpoints.c.id, t.webhook_endpoints.c.events)
        .where(t.webhook_endpoints.c.workspace_id == ws_id, _LIVE)
        .order_by(t.webhook_endpoints.c.id)
    ).all()
    return [r.id for r in rows if event in r.events]


def _enqueue(conn: sa.Connection, endpoint_ids: Sequence[int], event: str, build_id: int | None, data: dict) -> None:
    now = utcnow()
    conn.execute(
        t.notification_outbox.insert(),
        [
            dict(
                endpoint_id=endpoint_id,
                message_id=f"msg_{secrets.token_urlsafe(18)}",
                event=event,
                build_id=build_id,
                data=data,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
            )
            for endpoint_id in endpoint_ids
        ],
    )


def record_build_event(
    conn: sa.Connection, build_id: int, current: BuildState | None, to: BuildState, reason: str
) -> None:
    """Queue the transition's event for every endpoint of the build's workspace that wants it, in the transition's
    own transaction (a no-op for transitions that are no event, and for workspaces without endpoints)."""
    event = build_event(current, to)
    if event is None:
        return
    ws_of_build = (
        sa.select(t.apps.c.workspace_id)
        .select_from(t.builds.join(t.apps, t.apps.c.id == t.builds.c.app_id))
        .where(t.builds.c.id == build_id)
        .scalar_subquery()
    )
    endpoints = _subscribed(conn, ws_of_build, event)
    if endpoints:
        _enqueue(conn, endpoints, event, build_id, build_data(get_build(conn, build_id), reason))


def record_desired_event(conn: sa.Connection, change: DesiredChange) -> None:
    """Queue a desired-state change for the app's workspace's subscribed endpoints, in the change's transaction."""
    ws_of_app = sa.select(t.apps.c.workspace_id).where(t.apps.c.id == change.app_id).scalar_subquery()
    endpoints = _subscribed(conn, ws_of_app, DESIRED_STATE_CHANGED)
    if endpoints:
        _enqueue(conn, endpoints, DESIRED_STATE_CHANGED, change.build_id, desired_data(change))


def _drop_pending(conn: sa.Connection, endpoint_id: int, why: str) -> None:
    conn.execute(
        t.notification_outbox.update()
        .where(t.notification_outbox.c.endpoint_id == endpoint_id, t.notification_outbox.c.outcome.is_(None))
        .values(outcome="dropped", done_at=utcnow(), last_error=why)
    )


class Notifications(StoreBase):
    """Webhook endpoints, their outbox and their delivery log."""

    # -- endpoints, as the API manages them ---------------------------------------------------------------------

    def add_endpoint(self, workspace: str, url: str, events: Sequence[str], secret_ciphertext: str) -> Endpoint:
        with self._tx() as conn:
            ws_id = workspace_id(conn, workspace, create=True)
            endpoint_id = conn.execute(
                t.webhook_endpoints.insert()
                .values(
                    workspace_id=ws_id,
                    url=url,
                    events=list(events),
                    secret_ciphertext=secret_ciphertext,
                    created_at=utcnow(),
                    failures=0,
                )
                .returning(t.webhook_endpoints.c.id)
            ).scalar_one()
            return _endpoint(conn.execute(_ENDPOINT_SELECT.where(t.webhook_endpoints.c.id == endpoint_id)).one())

    def endpoints(self, workspace: str) -> list[Endpoint]:
        """The workspace's endpoints, disabled ones too (with why), oldest first."""
        query = _ENDPOINT_SELECT.where(t.workspaces.c.name == workspace, t.webhook_endpoints.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return [_endpoint(r) for r in conn.execute(query.order_by(t.webhook_endpoints.c.id))]

    def endpoint(self, workspace: str, endpoint_id: int) -> Endpoint:
        with self.engine.connect() as conn:
            return self._endpoint_in(conn, workspace, endpoint_id)

    def _endpoint_in(self, conn: sa.Connection, workspace: str, endpoint_id: int) -> Endpoint:
        row = conn.execute(
            _ENDPOINT_SELECT.where(
                t.workspaces.c.name == workspace,
                t.webhook_endpoints.c.id == endpoint_id,
                t.webhook_endpoints.c.deleted_at.is_(None),
            )
        ).first()
        if row is None:
            raise NotFound(f"no webhook endpoint {endpoint_id} in workspace {workspace!r}")
        return _endpoint(row)

    def remove_endpoint(self, workspace: str, endpoint_id: int) -> Endpoint:
        """Stop notifying the endpoint at once: its undelivered messages are dropped; its log stays."""
        with self._tx() as conn:
            endpoint = self._endpoint_in(conn, workspace, endpoint_id)
            conn.execute(
                t.webhook_endpoints.update().where(t.webhook_endpoints.c.id == endpoint_id).values(deleted_at=utcnow())
            )
            _drop_pending(conn, endpoint_id, "endpoint removed")
            return endpoint

    def deliveries(self, workspace: str, endpoint_id: int, limit: int = 100) -> list[Attempt]:
        """The endpoint's delivery attempts, newest first."""
        a, o = t.notification_attempts, t.notification_outbox
        with self.engine.connect() as conn:
            self._endpoint_in(conn, workspace, endpoint_id)
            rows = conn.execute(
                sa.select(a, o.c.message_id, o.c.event, o.c.outcome)
                .select_from(a.join(o, o.c.id == a.c.outbox_id))
                .where(a.c.endpoint_id == endpoint_id)
                .order_by(a.c.id.desc())
                .limit(limit)
            ).all()
        return [
            Attempt(
                id=r.id,
                message_id=r.message_id,
                event=r.event,
                at=aware(r.at) or utcnow(),
                status_code=r.status_code,
                error=r.error,
                duration_ms=r.duration_ms,
                outcome=r.outcome,
            )
            for r in rows
        ]

    # -- the outbox, as the sender drains it ----------------------------------------------------------------------

    def endpoints_with_mail(self, limit: int = 1000) -> list[Endpoint]:
        """Live endpoints that have undelivered messages, the longest waiting first."""
        o = t.notification_outbox
        oldest = (
            sa.select(o.c.endpoint_id, sa.func.min(o.c.id).label("first"))
            .where(o.c.outcome.is_(None))
            .group_by(o.c.endpoint_id)
            .subquery()
        )
        query = (
            _ENDPOINT_SELECT.join(oldest, oldest.c.endpoint_id == t.webhook_endpoints.c.id)
            .where(_LIVE)
            .order_by(oldest.c.first)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_endpoint(r) for r in conn.execute(query)]

    def live_endpoint(self, endpoint_id: int) -> Endpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(_ENDPOINT_SELECT.where(t.webhook_endpoints.c.id == endpoint_id, _LIVE)).first()
        return None if row is None else _endpoint(row)

    def next_message(self, endpoint_id: int) -> Message | None:
        """The endpoint's oldest undelivered message: later ones wait for it, so each endpoint hears in order."""
        o = t.notification_outbox
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(o).where(o.c.endpoint_id == endpoint_id, o.c.outcome.is_(None)).order_by(o.c.id).limit(1)
            ).first()
        return None if row is None else _message(row)

    def keep_body(self, message_id: int, body: str) -> None:
        """The body made at the first attempt, so every retry signs and sends the same bytes."""
        o = t.notification_outbox
        with self._tx() as conn:
            conn.execute(o.update().where(o.c.id == message_id, o.c.body.is_(None)).values(body=body))

    def _attempt(
        self, conn: sa.Connection, message: Message, at: datetime, status: int | None, error: str | None, ms: int
    ):
        conn.execute(
            t.notification_attempts.insert().values(
                outbox_id=message.id,
                endpoint_id=message.endpoint_id,
                at=at,
                status_code=status,
                error=None if error is None else error[:2000],
                duration_ms=ms,
            )
        )

    def delivered(self, message: Message, at: datetime, status: int, ms: int) -> None:
        with self._tx() as conn:
            self._attempt(conn, message, at, status, None, ms)
            conn.execute(
                t.notification_outbox.update()
                .where(t.notification_outbox.c.id == message.id)
                .values(outcome="delivered", done_at=at, attempts=message.attempts + 1, last_error=None)
            )
            conn.execute(
                t.webhook_endpoints.update()
                .where(t.webhook_endpoints.c.id == message.endpoint_id)
                .values(failures=0, failing_since=None)
            )

    def retry_later(
        self, message: Message, at: datetime, status: int | None, error: str, ms: int, retry_at: datetime
    ) -> None:
        """A failed attempt: logged, counted against the endpoint, and the message tried again at `retry_at`."""
        e = t.webhook_endpoints
        with self._tx() as conn:
            self._attempt(conn, message, at, status, error, ms)
            conn.execute(
                t.notification_outbox.update()
                .where(t.notification_outbox.c.id == message.id)
                .values(attempts=message.attempts + 1, next_attempt_at=retry_at, last_error=error[:2000])
            )
            conn.execute(
                e.update()
                .where(e.c.id == message.endpoint_id)
                .values(failures=e.c.failures + 1, failing_since=sa.func.coalesce(e.c.failing_since, at))
            )

    def disable(self, message: Message, at: datetime, status: int | None, error: str, ms: int, reason: str) -> None:
        """The endpoint failed for too long: logged, disabled with the reason shown, its undelivered messages dropped."""
        e = t.webhook_endpoints
        with self._tx() as conn:
            self._attempt(conn, message, at, status, error, ms)
            conn.execute(
                e.update()
                .where(e.c.id == message.endpoint_id)
                .values(failures=e.c.failures + 1, disabled_at=at, disabled_reason=reason)
            )
            _drop_pending(conn, message.endpoint_id, reason)
