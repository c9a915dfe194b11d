"""Lines per second appended and read by each log store, by batch size (batch 1 is the single-row baseline).

Run: .venv/bin/python benchmarks/bench_logs.py [--lines N] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starforge_dag.core.models import LogLine
from starforge_dag.logs import ClickHouseLogStore, LogStoreBackend, SqlLogStore

BATCHES = (1, 100, 1000)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_lines(build_id: int, n: int) -> list[LogLine]:
    return [
        LogLine(
            build_id=build_id,
            seq=i,
            stream="stdout",
            vertex=f"sha256:{i % 40:064x}",
            text=f"#{i % 40} [{i % 7}/7] RUN npm ci --prefer-offline  added {i} packages in {i % 13}.{i % 10}s",
            ts=T0 + timedelta(microseconds=i),
        )
        for i in range(n)
    ]


def bench(store: LogStoreBackend, build_id: int, batch: int, n: int) -> tuple[float, float]:
    """Append n lines in batches, then page through them; returns (append, read) lines per second."""
    lines = make_lines(build_id, n)
    started = time.perf_counter()
    for i in range(0, n, batch):
        store.append(lines[i : i + batch])
    appended = time.perf_counter() - started

    started, after, seen = time.perf_counter(), -1, 0
    while page := store.read(build_id, after_seq=after, limit=1000):
        after, seen = page[-1].seq, seen + len(page)
    read = time.perf_counter() - started
    if seen != n or store.count(build_id) != n:
        raise AssertionError(f"{store.__class__.__name__} holds {seen} lines of build {build_id}, expected {n}")
    return n / appended, n / read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=50_000, help="lines per batched run")
    parser.add_argument("--single-lines", type=int, default=2_000, help="lines for the batch-1 baseline")
    parser.add_argument("--postgres-url", help="also measure the SQL store on this (empty) Postgres database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, Callable[[], LogStoreBackend]]] = [
            ("sql (SQLite)", lambda: SqlLogStore(f"sqlite:///{Path(tmp) / 'starforge.db'}")),
            ("clickhouse (chdb)", lambda: ClickHouseLogStore(f"chdb://{Path(tmp) / 'ch'}")),
        ]
        if args.postgres_url:
            stores.append(("sql (Postgres)", lambda: SqlLogStore(args.postgres_url)))

        build_ids = itertools.count(1)
        print(f"{'store':<20}{'batch':>7}{'lines':>9}{'append lines/s':>17}{'read lines/s':>15}")
        for name, open_store in stores:
            with open_store() as store:
                for batch in BATCHES:
                    n = args.single_lines if batch == 1 else args.lines
                    append_rate, read_rate = bench(store, next(build_ids), batch, n)
                    print(f"{name:<20}{batch:>7}{n:>9}{append_rate:>17,.0f}{read_rate:>15,.0f}")


if __name__ == "__main__":
    main()
