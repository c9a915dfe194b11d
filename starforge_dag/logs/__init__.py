"""Build log storage (Dagster-free): one port, a SQL and a ClickHouse adapter, and a buffered writer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import LogStoreBackend
from .sql import SqlLogStore
from .writer import Backoff, BufferedLogWriter, LogsNotSaved

if TYPE_CHECKING:
    from .clickhouse import ClickHouseLogStore

__all__ = [
    "Backoff",
    "BufferedLogWriter",
    "ClickHouseLogStore",
    "LogStoreBackend",
    "LogsNotSaved",
    "SqlLogStore",
    "open_log_store",
]

_CLICKHOUSE_SCHEMES = ("chdb:", "http:", "https:", "clickhouse:")


def open_log_store(dsn: str, database_url: str) -> LogStoreBackend:
    """Pick the engine from the DSN: "sql" (or empty) keeps logs in the build store's database."""
    if dsn in ("", "sql"):
        return SqlLogStore(database_url)
    if dsn.startswith(_CLICKHOUSE_SCHEMES):
        from .clickhouse import ClickHouseLogStore

        return ClickHouseLogStore(dsn)
    raise ValueError(f"unknown log store DSN {dsn!r}: use sql, chdb:///path, http(s)://host or clickhouse://host")


def __getattr__(name: str) -> object:
    """ClickHouseLogStore imports clickhouse_connect, which is slow; load it only when asked for."""
    if name == "ClickHouseLogStore":
        from .clickhouse import ClickHouseLogStore

        return ClickHouseLogStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
