"""The log store as a resource: configuration only; each use opens a backend and closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from ..core.models import LogLine
from ..logs import BufferedLogWriter, LogStoreBackend, open_build_log, open_log_store


class LogStoreResource(dg.ConfigurableResource):
    """Where build logs go: the build store's database ("sql") or ClickHouse (chdb:// or a server)."""

    dsn: str = Field(
        default="sql", description="sql | chdb:///path | http(s)://user:pass@host:port | clickhouse://host"
    )
    database_url: str = Field(description="SQLAlchemy URL of the build store, used when dsn is sql.")

    @contextmanager
    def open(self) -> Iterator[LogStoreBackend]:
        with open_log_store(self.dsn, self.database_url) as backend:
            yield backend

    def read(self, build_id: int, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        with self.open() as backend:
            return backend.read(build_id, after_seq=after_seq, limit=limit)

    def last_seq(self, build_id: int) -> int:
        with self.open() as backend:
            return backend.last_seq(build_id)

    @contextmanager
    def writer(self, build_id: int) -> Iterator[BufferedLogWriter]:
        """Numbering continues after the stored lines, so a re-executed build appends to its log."""
        with open_build_log(self.dsn, self.database_url, build_id) as writer:
            yield writer
