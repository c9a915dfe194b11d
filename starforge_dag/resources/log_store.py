"""The log store as a resource: configuration only; each use opens a backend and closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from ..logs import BufferedLogWriter, LogStoreBackend, open_build_log, open_log_store
from ..logs.masking import Masker
from .build_store import BuildStoreResource


class LogStoreResource(dg.ConfigurableResource):
    """Where build logs go: the build store's database ("sql") or ClickHouse (chdb:// or a server)."""

    dsn: str = Field(
        default="sql", description="sql | chdb:///path | http(s)://user:pass@host:port | clickhouse://host"
    )
    build_store: BuildStoreResource = Field(description="The build store, which keeps the logs when dsn is sql.")

    @contextmanager
    def open(self) -> Iterator[LogStoreBackend]:
        with open_log_store(self.dsn, self.build_store.database_url) as backend:
            yield backend

    @contextmanager
    def writer(self, build_id: int, masker: Masker | None = None) -> Iterator[BufferedLogWriter]:
        """Numbering continues after the stored lines, so a re-executed build appends to its log; every line is
        masked with the build's secrets before it is numbered and stored."""
        with open_build_log(self.dsn, self.build_store.database_url, build_id, masker=masker) as writer:
            yield writer
