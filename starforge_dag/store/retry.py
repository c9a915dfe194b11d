"""Waiting out a store that is briefly down (the database, the log store) instead of failing a build for good."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity
from sqlalchemy import exc as sa_exc

T = TypeVar("T")
log = logging.getLogger(__name__)

_DRIVER_MODULES = ("psycopg2", "psycopg", "sqlite3")
_DRIVER_ERRORS = {"OperationalError", "InterfaceError"}


def is_connectivity_error(exc: BaseException) -> bool:
    """A lost, refused or reset database connection (SQLAlchemy's or the driver's own error), not a bad query."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    kind = type(exc)
    return kind.__module__.split(".", 1)[0] in _DRIVER_MODULES and any(
        c.__name__ in _DRIVER_ERRORS for c in kind.__mro__
    )


@dataclass(frozen=True)
class Backoff:
    """Waits growing by `factor` from `first_s` to at most `max_s`, each scaled by a random 1 ± `jitter`;
    the error is raised once the next wait would end past `deadline_s` after the first attempt."""

    first_s: float = 0.2
    max_s: float = 5.0
    factor: float = 2.0
    deadline_s: float = 30.0
    jitter: float = 0.0

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based), before jitter."""
        return min(self.first_s * self.factor ** max(attempt - 1, 0), self.max_s)

    def call(self, fn: Callable[[], T], *, retry_if: Callable[[BaseException], bool], what: str) -> T:
        """`fn()`, called again after each error `retry_if` accepts until the deadline; other errors pass at once."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, Exception) and retry_if(exc)),
            wait=lambda state: self.delay(state.attempt_number) * random.uniform(1 - self.jitter, 1 + self.jitter),
            stop=tenacity.stop_before_delay(self.deadline_s),
            before_sleep=lambda state: log.warning(
                "%s: %r; retrying in %.1fs",
                what,
                state.outcome.exception() if state.outcome else None,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        return retrying(fn)
