"""Following a build's log: the one loop behind `starforge logs -f` and `GET /builds/{id}/logs?follow=true`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from ..core.models import LogLine
from .base import LogStoreBackend

FOLLOW_POLL_S = 0.5


def follow_log(
    store: LogStoreBackend,
    build_id: int,
    *,
    after: int = -1,
    ended: Callable[[], bool] | None = None,
    poll_s: float = FOLLOW_POLL_S,
    wait: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """Every stored line after `after`, in order; given `ended`, keep polling until the build had ended
    before a read that found nothing new (so lines written just before the end are never cut off)."""
    while True:
        done = ended is None or ended()
        lines = store.read(build_id, after_seq=after)
        yield from lines
        if lines:
            after = lines[-1].seq
            continue
        if done:
            return
        wait(poll_s)
