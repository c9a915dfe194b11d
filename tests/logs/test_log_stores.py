"""Every log store backend keeps a build's lines once each, in seq order (invariant 5)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from starforge_dag.core.models import LogLine
from starforge_dag.logs import ClickHouseLogStore, LogStoreBackend, SqlLogStore, open_log_store

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def lines(build_id: int, seqs: range | list[int]) -> list[LogLine]:
    streams = ("stdout", "stderr", "system")
    return [
        LogLine(
            build_id=build_id,
            seq=s,
            stream=streams[s % 3],
            text=f"line {s} ✓ \"quoted\" 'x'",
            vertex=None if s % 2 else f"sha256:{s:04x}",
            ts=T0 + timedelta(milliseconds=s),
        )
        for s in seqs
    ]


def test_lines_come_back_in_seq_order_whatever_the_insert_order(log_store: LogStoreBackend, build_id: int) -> None:
    written = lines(build_id, range(40))
    shuffled = written[:]
    random.Random(7).shuffle(shuffled)
    log_store.append(shuffled[:25])
    log_store.append(shuffled[25:])

    assert log_store.read(build_id) == written


def test_resent_lines_are_stored_once(log_store: LogStoreBackend, build_id: int) -> None:
    log_store.append(lines(build_id, range(10)))
    log_store.append(lines(build_id, range(5, 15)))
    log_store.append(lines(build_id, range(15)))

    assert log_store.count(build_id) == 15
    assert [ln.seq for ln in log_store.read(build_id)] == list(range(15))


def test_read_pages_after_the_last_seen_seq(log_store: LogStoreBackend, build_id: int) -> None:
    log_store.append(lines(build_id, range(25)))

    pages, after = [], -1
    while page := log_store.read(build_id, after_seq=after, limit=10):
        pages.append([ln.seq for ln in page])
        after = page[-1].seq

    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_last_seq_and_count_follow_appends(log_store: LogStoreBackend, build_id: int) -> None:
    assert log_store.last_seq(build_id) == -1
    assert log_store.count(build_id) == 0
    assert log_store.read(build_id) == []

    log_store.append(lines(build_id, [0, 1, 2]))
    log_store.append(lines(build_id + 1000, range(50)))

    assert log_store.last_seq(build_id) == 2
    assert log_store.count(build_id) == 3
    assert {ln.build_id for ln in log_store.read(build_id)} == {build_id}


def test_a_large_batch_is_stored_whole(log_store: LogStoreBackend, build_id: int) -> None:
    log_store.append(lines(build_id, range(50_000)))

    assert log_store.count(build_id) == 50_000
    assert log_store.last_seq(build_id) == 49_999
    assert [ln.seq for ln in log_store.read(build_id, after_seq=49_989)] == list(range(49_990, 50_000))


def test_open_log_store_picks_the_engine_from_the_dsn(sqlite_url: str) -> None:
    with open_log_store("sql", sqlite_url) as store:
        assert isinstance(store, SqlLogStore)
    with open_log_store("", sqlite_url) as store:
        assert isinstance(store, SqlLogStore)
    with pytest.raises(ValueError, match="unknown log store DSN"):
        open_log_store("mongodb://logs", sqlite_url)


@pytest.mark.integration
def test_open_log_store_opens_chdb(chdb_dsn: str, sqlite_url: str, build_id: int) -> None:
    with open_log_store(chdb_dsn, sqlite_url) as store:
        assert isinstance(store, ClickHouseLogStore)
        store.append(lines(build_id, range(3)))
    with open_log_store(chdb_dsn, sqlite_url) as store:
        assert store.last_seq(build_id) == 2


def test_clickhouse_names_must_be_plain_identifiers() -> None:
    with pytest.raises(ValueError, match="identifier"):
        ClickHouseLogStore("chdb:///unused", database="logs; DROP TABLE x")
