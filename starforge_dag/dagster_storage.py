"""Dagster's Postgres storage with its connections kept open: one small pool per process, not one connection per query.

Dagster's own Postgres storage opens a new connection for every query and closes it after (SQLAlchemy's NullPool),
outside the webserver. A build run writes about a hundred events and the daemon polls the run queue every second, so a
burst of ten builds opens some 2,500 connections, and Postgres spends most of the machine's CPU starting and ending
backends. This storage is the same tables and the same queries; its run, event-log and schedule storage share one
engine whose pool keeps up to `pool_size` connections open (checked before each use, so a restarted Postgres costs a
reconnect, not a failed run). Configure it in dagster.yaml as custom storage (deploy/dagster-postgres.yaml).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from dagster import Field, IntSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 3  # connections one process keeps open: a run uses one or two at a time, the daemon's threads a few more
MAX_OVERFLOW = 10  # more at once are opened for the moment and closed after
POOL_RECYCLE_S = 1800  # a connection older than this is replaced (proxies and poolers drop long-lived ones)

_ENGINES: weakref.WeakSet[sa.engine.Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    """In a forked child (a Celery worker's run process), never use the parent's sockets: start empty pools."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def pooled_engine(
    postgres_url: str, token_provider: Any = None, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
) -> sa.engine.Engine:
    engine = create_pg_engine(
        postgres_url,
        token_provider,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=POOL_RECYCLE_S,
        pool_pre_ping=True,
    )
    _ENGINES.add(engine)
    return engine


class _SharesEngine:
    """A part of PooledPostgresStorage: queries through the engine it is given; disposing closes its connections."""

    _engine: sa.engine.Engine

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engine.dispose()


class PooledRunStorage(_SharesEngine, PostgresRunStorage):
    pass


class PooledEventLogStorage(_SharesEngine, PostgresEventLogStorage):
    pass


class PooledScheduleStorage(_SharesEngine, PostgresScheduleStorage):
    pass


class PooledPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage whose three parts share one pooled engine (see the module's docstring)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
    ):
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self._run_storage = PooledRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = PooledEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PooledScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        # Each part made a one-connection-per-query engine to create or check its tables; from now on they share one
        # pool. Dagster's instance disposes the run and event-log storage when it is disposed: both close the pool.
        engine = pooled_engine(postgres_url, token_provider, pool_size, max_overflow)
        for part in (self._run_storage, self._event_log_storage, self._schedule_storage):
            part._engine.dispose()
            part._engine = engine
        DagsterStorage.__init__(self)  # type: ignore[arg-type]

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **cast(Mapping[str, Any], pg_config()),
            "pool_size": Field(IntSource, is_required=False, default_value=POOL_SIZE),
            "max_overflow": Field(IntSource, is_required=False, default_value=MAX_OVERFLOW),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            pool_size=config_value.get("pool_size", POOL_SIZE),
            max_overflow=config_value.get("max_overflow", MAX_OVERFLOW),
        )
