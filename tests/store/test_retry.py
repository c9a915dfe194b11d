"""The one backoff: a store that is briefly down is waited out, a bad call is not, and waiting ends at the deadline."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from starforge_dag.store.retry import Backoff, is_connectivity_error

QUICK = Backoff(first_s=0.01, max_s=0.02, deadline_s=0.5, jitter=0.2)


def _failing(times: int, error: Exception):
    calls: list[float] = []

    def call() -> str:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise error
        return "answer"

    return call, calls


def test_connection_errors_are_waited_out():
    refused = sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    call, calls = _failing(3, refused)
    assert QUICK.call(call, retry_if=is_connectivity_error, what="test") == "answer"
    assert len(calls) == 4 and all(later - earlier >= 0.008 for earlier, later in zip(calls, calls[1:]))


def test_an_error_that_is_not_retryable_is_raised_at_once():
    call, calls = _failing(1, sa.exc.ProgrammingError("SELEC 1", {}, Exception("syntax error")))
    with pytest.raises(sa.exc.ProgrammingError):
        QUICK.call(call, retry_if=is_connectivity_error, what="test")
    assert len(calls) == 1


def test_waiting_ends_with_the_last_error_before_the_deadline_passes():
    call, calls = _failing(1000, ConnectionResetError("reset"))
    started = time.monotonic()
    with pytest.raises(ConnectionResetError):
        Backoff(first_s=0.05, max_s=0.05, deadline_s=0.3).call(call, retry_if=lambda exc: True, what="test")
    assert time.monotonic() - started < 0.3 and 4 <= len(calls) <= 6


def test_waits_grow_by_the_factor_up_to_the_cap():
    assert [Backoff(first_s=0.1, max_s=0.5, factor=2.0).delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
