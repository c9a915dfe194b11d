"""Following a log: lines that arrive while following, and the end of the build, seen by the one follow loop."""

from __future__ import annotations

from collections.abc import Callable

from starforge_dag.core.models import LogLine
from starforge_dag.logs import LogStoreBackend, follow_log


def lines(build_id: int, seqs: range) -> list[LogLine]:
    return [LogLine(build_id=build_id, seq=s, stream="stdout", text=f"line {s}") for s in seqs]


def scripted(steps: list[Callable[[], None]]) -> Callable[[float], None]:
    """A wait that, instead of sleeping, runs the next thing the build does; a further wait is a test failure."""

    def wait(_: float) -> None:
        assert steps, "the follower waited again after the build had ended and its last lines were read"
        steps.pop(0)()

    return wait


def test_follow_reads_lines_written_while_waiting_and_stops_after_the_build_ends(
    log_store: LogStoreBackend, build_id: int
) -> None:
    log_store.append(lines(build_id, range(3)))
    ended = False

    def build_writes_more() -> None:
        log_store.append(lines(build_id, range(3, 5)))

    def build_ends_with_last_lines() -> None:
        nonlocal ended
        log_store.append(lines(build_id, range(5, 7)))  # written just before the end: must not be cut off
        ended = True

    wait = scripted([build_writes_more, build_ends_with_last_lines])
    seen = [line.seq for line in follow_log(log_store, build_id, after=0, ended=lambda: ended, wait=wait)]
    assert seen == list(range(1, 7))


def test_without_follow_every_stored_line_is_read_past_one_page(log_store: LogStoreBackend, build_id: int) -> None:
    log_store.append(lines(build_id, range(2500)))
    seen = [line.seq for line in follow_log(log_store, build_id, wait=scripted([]))]
    assert seen == list(range(2500))


def test_following_an_ended_build_returns_what_is_stored_without_waiting(
    log_store: LogStoreBackend, build_id: int
) -> None:
    log_store.append(lines(build_id, range(2)))
    seen = [line.text for line in follow_log(log_store, build_id, ended=lambda: True, wait=scripted([]))]
    assert seen == ["line 0", "line 1"]
