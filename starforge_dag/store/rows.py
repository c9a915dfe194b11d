"""What every part of the build store shares: row mapping, the joined build query and the engine holder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel

from ..core.models import App, Build
from . import schema as t
from .db import get_engine

M = TypeVar("M", bound=BaseModel)


class NotFound(LookupError):
    """The app or build asked for does not exist."""


def aware(value: datetime | None) -> datetime | None:
    """SQLite drops the zone of a timestamp; every timestamp we hand out is UTC-aware."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def as_utc(value: datetime | None) -> datetime | None:
    """Store timestamps in UTC: SQLite keeps the wall-clock digits and drops the offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BUILD_SELECT = sa.select(
    t.builds,
    t.apps.c.name.label("app"),
    t.workspaces.c.name.label("workspace"),
    t.apps.c.build_timeout_s.label("build_timeout_s"),
).select_from(
    t.builds.join(t.apps, t.apps.c.id == t.builds.c.app_id).join(
        t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id
    )
)
APP_FROM = t.apps.join(t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id)


def unsent_outbox_rows(engine: sa.Engine, outbox: sa.Table, limit: int) -> list[sa.Row]:
    """An outbox table's unsent rows (no `outcome` yet), oldest first, each with its app's and workspace's names."""
    query = (
        sa.select(outbox, t.apps.c.name.label("app"), t.workspaces.c.name.label("workspace"))
        .select_from(
            outbox.join(t.apps, t.apps.c.id == outbox.c.app_id).join(
                t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id
            )
        )
        .where(outbox.c.outcome.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def retry_outbox_row(engine: sa.Engine, outbox: sa.Table, row_id: int, at: datetime, error: str, failed: bool) -> None:
    """Try an outbox row again at `at`; only a failed attempt of its own counts towards its backoff."""
    attempts = outbox.c.attempts + 1 if failed else outbox.c.attempts
    with engine.begin() as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == row_id)
            .values(next_attempt_at=at, attempts=attempts, last_error=error[:2000])
        )


def to_model(model: type[M], row: Any) -> M:
    """A model from a result row: its fields by name, timestamps made timezone-aware."""
    m = row._mapping
    values = {name: m[name] for name in model.model_fields if name in m}
    return model(**{k: aware(v) if isinstance(v, datetime) else v for k, v in values.items()})


def to_build(row: Any) -> Build:
    return to_model(Build, row)


def to_app(row: Any) -> App:
    return to_model(App, row)


def is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def for_update(conn: sa.Connection, query: sa.Select, of: sa.Table = t.builds) -> sa.Select:
    """Lock the selected rows on Postgres; SQLite's BEGIN IMMEDIATE already excludes other writers."""
    return query.with_for_update(of=of) if is_postgres(conn) else query


def get_build(conn: sa.Connection, build_id: int) -> Build:
    row = conn.execute(BUILD_SELECT.where(t.builds.c.id == build_id)).first()
    if row is None:
        raise NotFound(f"no build with id {build_id}")
    return to_build(row)


class StoreBase:
    """The engine and transaction helper every part of the store works through."""

    def __init__(self, url: str):
        self.engine = get_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
