"""Database connectivity errors are transient: wait them out (bounded) instead of failing a build for good."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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
class DbRetry:
    """Doubling waits with jitter, capped, for at most `budget_s` before the error is raised."""

    budget_s: float = 60.0
    first_s: float = 0.1
    max_s: float = 2.0

    def call(self, fn: Callable[[], T], what: str = "database call") -> T:
        deadline = time.monotonic() + self.budget_s
        delay = self.first_s
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_connectivity_error(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: database unreachable (%s); retrying in %.1fs", what, type(exc).__name__, delay)
                time.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_s)
