"""Build logs in ClickHouse: chdb in-process for tests and single hosts, a server in production.

chdb holds its data directory exclusively while any client in a process is open, so several
processes (run workers, the API) sharing one log store need a ClickHouse server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.models import LogLine
from .base import LogStoreBackend, as_utc

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_COLUMNS = ["build_id", "seq", "ts", "stream", "vertex", "text"]
_TYPES = ["Int64", "Int32", "DateTime64(6, 'UTC')", "LowCardinality(String)", "Nullable(String)", "String"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _identifier(name: str) -> str:
    """Database and table names come from configuration and are spliced into DDL, so only plain names pass."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain ClickHouse identifier")
    return f"`{name}`"


class ClickHouseLogStore(LogStoreBackend):
    """Log lines in a ReplacingMergeTree keyed by (build_id, seq): a resent line collapses with the stored one.

    A resend is an identical copy, so which copy survives does not matter. Merges deduplicate only
    eventually, so reads and counts go through FINAL and never show a resend.
    """

    def __init__(self, dsn: str, database: str = "starforge", table: str = "build_logs") -> None:
        import clickhouse_connect  # slow to import; only deployments that log to ClickHouse pay for it

        self._table = table
        self._database = database
        self._name = f"{_identifier(database)}.{_identifier(table)}"
        # The default database always exists; ours may not yet, so every statement names it.
        interface = "https" if dsn.startswith("https:") else None
        self._client: Client = clickhouse_connect.get_client(dsn=dsn, database="default", interface=interface)
        self._lock = threading.Lock()
        try:
            self._client.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
            self._client.command(
                f"CREATE TABLE IF NOT EXISTS {self._name} ("
                " build_id Int64, seq Int32, ts DateTime64(6, 'UTC'), stream LowCardinality(String),"
                " vertex Nullable(String), text String CODEC(ZSTD(3))"
                ") ENGINE = ReplacingMergeTree ORDER BY (build_id, seq)"
            )
        except Exception:
            self._client.close()
            raise

    def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        columns: list[list[Any]] = [
            [ln.build_id for ln in lines],
            [ln.seq for ln in lines],
            [ln.ts for ln in lines],
            [ln.stream for ln in lines],
            [ln.vertex for ln in lines],
            [ln.text for ln in lines],
        ]
        with self._lock:
            self._client.insert(
                self._table,
                columns,
                column_names=_COLUMNS,
                column_type_names=_TYPES,
                database=self._database,
                column_oriented=True,
            )

    def read(self, build_id: int, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        query = (
            f"SELECT build_id, seq, ts, stream, vertex, text FROM {self._name} FINAL"
            " WHERE build_id = {build_id:Int64} AND seq > {after_seq:Int32} ORDER BY seq LIMIT {limit:UInt32}"
        )
        with self._lock:
            rows = self._client.query(
                query, parameters={"build_id": build_id, "after_seq": after_seq, "limit": limit}
            ).result_rows
        return [
            LogLine(build_id=b, seq=s, ts=as_utc(ts), stream=stream, vertex=vertex, text=text)
            for b, s, ts, stream, vertex, text in rows
        ]

    def last_seq(self, build_id: int) -> int:
        query = f"SELECT ifNull(maxOrNull(seq), -1) FROM {self._name} WHERE build_id = {{build_id:Int64}}"
        with self._lock:
            return int(self._client.query(query, parameters={"build_id": build_id}).result_rows[0][0])

    def count(self, build_id: int) -> int:
        query = f"SELECT count() FROM {self._name} FINAL WHERE build_id = {{build_id:Int64}}"
        with self._lock:
            return int(self._client.query(query, parameters={"build_id": build_id}).result_rows[0][0])

    def close(self) -> None:
        with self._lock:
            self._client.close()
