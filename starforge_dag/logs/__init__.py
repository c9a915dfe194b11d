"""Build log storage (Dagster-free): one port, a SQL and a ClickHouse adapter, and a buffered writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ..store.retry import Backoff
from .base import LogStoreBackend
from .follow import follow_log
from .masking import Masker
from .sql import SqlLogStore
from .writer import BufferedLogWriter, LogsNotSaved

if TYPE_CHECKING:
    from .clickhouse import ClickHouseLogStore

__all__ = [
    "Backoff",
    "BufferedLogWriter",
    "ClickHouseLogStore",
    "LogStoreBackend",
    "LogsNotSaved",
    "SqlLogStore",
    "follow_log",
    "open_build_log",
    "open_log_store",
]

_CLICKHOUSE_SCHEMES = ("chdb:", "http:", "https:", "clickhouse:")
_RETRY = Backoff()


def open_log_store(dsn: str, database_url: str) -> LogStoreBackend:
    """Pick the engine from the DSN: "sql" (or empty) keeps logs in the build store's database."""
    if dsn in ("", "sql"):
        return SqlLogStore(database_url)
    if dsn.startswith(_CLICKHOUSE_SCHEMES):
        from .clickhouse import ClickHouseLogStore

        # A server DSN may name the database (http://host:8123/logs); a chdb DSN's path is its data directory.
        database = "" if dsn.startswith("chdb:") else urlparse(dsn).path.strip("/")
        return ClickHouseLogStore(dsn, database=database) if database else ClickHouseLogStore(dsn)
    raise ValueError(f"unknown log store DSN {dsn!r}: use sql, chdb:///path, http(s)://host or clickhouse://host")


@contextmanager
def open_build_log(
    dsn: str, database_url: str, build_id: int, retry: Backoff = _RETRY, masker: Masker | None = None
) -> Iterator[BufferedLogWriter]:
    """A writer that continues the build's stored log, waiting out a store that is down when the build starts."""
    store, start_seq = _resume(dsn, database_url, build_id, retry)
    with store, BufferedLogWriter(store, build_id, start_seq=start_seq, retry=retry, masker=masker) as writer:
        yield writer


def _resume(dsn: str, database_url: str, build_id: int, retry: Backoff) -> tuple[LogStoreBackend, int]:
    """The open store and the seq the build's log continues at; a bad DSN or URL is not waited on."""

    def attempt() -> tuple[LogStoreBackend, int]:
        store = open_log_store(dsn, database_url)
        try:
            return store, store.last_seq(build_id) + 1
        except BaseException:
            store.close()
            raise

    return retry.call(
        attempt, retry_if=lambda exc: not isinstance(exc, ValueError), what=f"log store of build {build_id}"
    )


def __getattr__(name: str) -> object:
    """ClickHouseLogStore imports clickhouse_connect, which is slow; load it only when asked for."""
    if name == "ClickHouseLogStore":
        from .clickhouse import ClickHouseLogStore

        return ClickHouseLogStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
