"""The buffered writer numbers lines and stores each once, in order, through a log store outage (invariant 5)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from starforge_dag.core.errors import ErrorKind, UserBuildError
from starforge_dag.core.models import LogLine, ProgressLine
from starforge_dag.logs import (
    Backoff,
    BufferedLogWriter,
    ClickHouseLogStore,
    LogsNotSaved,
    LogStoreBackend,
    SqlLogStore,
    open_build_log,
)

QUICK = Backoff(first_s=0.01, max_s=0.05, deadline_s=5.0)


class OutageStore(LogStoreBackend):
    """A real store behind a link that is down for the first `failures` appends (forever with None).

    With `lost_ack`, a failing append first reaches the store: the insert committed but its
    acknowledgement was lost, so the writer resends lines that are already stored.
    """

    def __init__(self, inner: LogStoreBackend, failures: int | None, lost_ack: bool = False) -> None:
        self.inner = inner
        self.failures = failures
        self.lost_ack = lost_ack
        self.attempts = 0
        self.failed = 0

    def append(self, lines: Sequence[LogLine]) -> None:
        self.attempts += 1
        if self.failures is None or self.failed < self.failures:
            self.failed += 1
            if self.lost_ack:
                self.inner.append(lines)
            raise ConnectionError("log store is down")
        self.inner.append(lines)

    def read(self, build_id: int, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        return self.inner.read(build_id, after_seq, limit)

    def last_seq(self, build_id: int) -> int:
        return self.inner.last_seq(build_id)

    def count(self, build_id: int) -> int:
        return self.inner.count(build_id)

    def close(self) -> None:
        self.inner.close()


def progress(i: int) -> ProgressLine:
    return ProgressLine(stream="stderr" if i % 5 == 0 else "stdout", text=f"step {i}", vertex=f"v{i % 3}")


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("lost_ack", [False, True], ids=["refused", "ack-lost"])
def test_lines_written_during_an_outage_are_stored_once_in_order(
    log_store: LogStoreBackend, build_id: int, lost_ack: bool
) -> None:
    down = OutageStore(log_store, failures=6, lost_ack=lost_ack)
    with BufferedLogWriter(down, build_id, start_seq=0, batch_size=50, flush_interval_s=0.02, retry=QUICK) as writer:
        for i in range(1000):
            writer.write(progress(i))
            if i % 100 == 0:  # the timer retries (or has stored everything) while the build still produces lines
                tried = down.attempts
                assert wait_for(lambda tried=tried: down.attempts > tried or writer.pending == 0), (
                    "the writer stopped trying to save its lines"
                )

    assert down.failed == 6
    stored = log_store.read(build_id, limit=2000)
    assert [ln.seq for ln in stored] == list(range(1000))
    assert [ln.text for ln in stored] == [f"step {i}" for i in range(1000)]
    assert log_store.count(build_id) == 1000


def test_a_store_that_never_comes_back_fails_close_and_keeps_the_lines(sqlite_url: str, build_id: int) -> None:
    down = OutageStore(SqlLogStore(sqlite_url), failures=None)
    writer = BufferedLogWriter(
        down, build_id, start_seq=40, batch_size=100, flush_interval_s=0.02, retry=Backoff(0.01, 0.05, 2.0, 0.3)
    )
    for i in range(300):
        writer.write(progress(i))

    with pytest.raises(LogsNotSaved, match=rf"300 log lines of build {build_id} are unsaved \(seq 40\.\.339\)") as err:
        writer.close()

    assert [ln.seq for ln in err.value.lines] == list(range(40, 340))
    assert "log store is down" in str(err.value)
    assert err.value.kind == ErrorKind.TRANSIENT
    assert down.attempts > 2
    assert down.inner.count(build_id) == 0


def test_a_failing_build_keeps_its_own_error_when_its_lines_cannot_be_saved(sqlite_url: str, build_id: int) -> None:
    down = OutageStore(SqlLogStore(sqlite_url), failures=None)
    with pytest.raises(UserBuildError, match="npm ci exited with 1") as err:
        with BufferedLogWriter(down, build_id, start_seq=0, retry=Backoff(0.01, 0.05, 2.0, 0.1)) as writer:
            writer.write(progress(0))
            raise UserBuildError("npm ci exited with 1", step="install")

    assert any("1 log lines of build" in note for note in err.value.__notes__)


def test_close_can_be_retried_after_the_store_returns(sqlite_url: str, build_id: int) -> None:
    down = OutageStore(SqlLogStore(sqlite_url), failures=None)
    writer = BufferedLogWriter(down, build_id, start_seq=0, retry=Backoff(0.01, 0.05, 2.0, 0.1))
    writer.write(progress(0))
    with pytest.raises(LogsNotSaved):
        writer.close()

    down.failures = down.failed
    writer.close()

    assert [ln.text for ln in down.inner.read(build_id)] == ["step 0"]


def test_lines_are_numbered_from_start_seq_and_flushed_by_the_timer(sqlite_url: str, build_id: int) -> None:
    store = SqlLogStore(sqlite_url)
    writer = BufferedLogWriter(store, build_id, start_seq=7, batch_size=1000, flush_interval_s=0.05)
    written = [writer.write(progress(i)) for i in range(3)]

    assert [ln.seq for ln in written] == [7, 8, 9]
    assert wait_for(lambda: store.count(build_id) == 3), "the timer never flushed a partial batch"
    assert writer.pending == 0
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(progress(3))


def test_a_full_batch_is_stored_without_waiting_for_the_timer(sqlite_url: str, build_id: int) -> None:
    store = SqlLogStore(sqlite_url)
    with BufferedLogWriter(store, build_id, start_seq=0, batch_size=10, flush_interval_s=60) as writer:
        for i in range(25):
            writer.write(progress(i))
        assert store.count(build_id) == 20
        assert writer.pending == 5
    assert store.count(build_id) == 25


def test_concurrent_writers_never_share_or_skip_a_seq(sqlite_url: str, build_id: int) -> None:
    store = SqlLogStore(sqlite_url)
    with BufferedLogWriter(store, build_id, start_seq=0, batch_size=7, flush_interval_s=0.01) as writer:
        threads = [threading.Thread(target=lambda: [writer.write(progress(i)) for i in range(500)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert [ln.seq for ln in store.read(build_id, limit=5000)] == list(range(2000))


@pytest.mark.integration
def test_a_build_waits_for_a_log_store_that_is_down_when_it_starts(
    chdb_dsn: str, sqlite_url: str, build_id: int, tmp_path: Path
) -> None:
    # chdb lets one process at a time hold its data directory: another process holding it is an outage.
    releasing = tmp_path / "releasing"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHDB, chdb_dsn, "1.5", str(releasing)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    try:
        with open_build_log(chdb_dsn, sqlite_url, build_id, Backoff(first_s=0.1, max_s=0.5, deadline_s=60)) as writer:
            opened_after_release = releasing.exists()
            writer.write(progress(0))
    finally:
        holder.wait(timeout=60)

    assert opened_after_release, "the writer opened the store while another process still held it"
    with ClickHouseLogStore(chdb_dsn) as store:
        assert [ln.text for ln in store.read(build_id)] == ["step 0"]


HOLD_CHDB = """
import pathlib, sys, time, clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
client.query("SELECT 1")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))  # the outage
pathlib.Path(sys.argv[3]).touch()  # marks the release: nobody can open the store before the close below
client.close()
"""


def test_a_log_store_that_stays_down_at_start_fails_the_writer(sqlite_url: str, build_id: int) -> None:
    with pytest.raises(OperationalError, match="Connection refused"):
        with open_build_log("http://127.0.0.1:1", sqlite_url, build_id, Backoff(0.05, 0.1, 2.0, 0.3)):
            pytest.fail("a writer opened on an unreachable store")
