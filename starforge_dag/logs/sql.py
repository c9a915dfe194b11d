"""Build logs in the build store's own database: the embedded default, no extra service to run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..core.models import LogLine
from ..store import open_store
from ..store.schema import build_logs
from .base import LogStoreBackend, as_utc

_COLUMNS = ("build_id", "seq", "ts", "stream", "vertex", "text")
_INSERTS: dict[str, Callable[[sa.Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


class SqlLogStore(LogStoreBackend):
    """Log lines as rows of `build_logs`; the (build_id, seq) primary key makes resends harmless."""

    def __init__(self, database_url: str) -> None:
        self._engine = open_store(database_url).engine  # the build store creates and migrates the schema
        dialect = self._engine.dialect.name
        if dialect not in _INSERTS:
            raise ValueError(f"the SQL log store supports SQLite and PostgreSQL, not {dialect}")
        # RETURNING makes SQLAlchemy batch the rows into multi-VALUES statements ("insertmanyvalues");
        # without it an ON CONFLICT insert goes row by row through the driver's executemany.
        self._insert = (
            _INSERTS[dialect](build_logs)
            .on_conflict_do_nothing(index_elements=["build_id", "seq"])
            .returning(build_logs.c.seq)
        )

    def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        rows = [
            {
                "build_id": ln.build_id,
                "seq": ln.seq,
                "ts": ln.ts,
                "stream": ln.stream,
                "vertex": ln.vertex,
                "text": ln.text,
            }
            for ln in lines
        ]
        with self._engine.begin() as conn:
            conn.execute(self._insert, rows)

    def read(self, build_id: int, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        query = (
            sa.select(*(build_logs.c[name] for name in _COLUMNS))
            .where(build_logs.c.build_id == build_id, build_logs.c.seq > after_seq)
            .order_by(build_logs.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            LogLine(build_id=b, seq=s, ts=as_utc(ts), stream=stream, vertex=vertex, text=text)
            for b, s, ts, stream, vertex, text in rows
        ]

    def last_seq(self, build_id: int) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(build_logs.c.seq), -1)).where(build_logs.c.build_id == build_id)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def count(self, build_id: int) -> int:
        query = sa.select(sa.func.count()).select_from(build_logs).where(build_logs.c.build_id == build_id)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        """Nothing to release: the engine is the build store's per-process pool, shared with it."""
