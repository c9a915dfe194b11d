"""Numbering and batching of a build's log lines, holding them through a log store outage."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from itertools import islice
from types import TracebackType

from ..core.errors import ErrorKind, TransientBuildError
from ..core.models import LogLine, ProgressLine
from ..store.retry import Backoff
from .base import LogStoreBackend
from .masking import Masker

logger = logging.getLogger(__name__)

# Catching up after an outage sends the backlog in few large inserts (ClickHouse wants few big
# parts) without ever building one unbounded request.
_MAX_SEND = 10_000
_RETRY = Backoff()


class LogsNotSaved(TransientBuildError):
    """The log store stayed down past the close deadline; `lines` still holds every unsaved line."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = "build log",
        kind: ErrorKind | None = None,
        lines: Sequence[LogLine] = (),
    ) -> None:
        super().__init__(message, step=step, kind=kind)
        self.lines = list(lines)


class BufferedLogWriter:
    """Gives each line the next seq and stores lines in batches, so a slow or absent store never stalls a build."""

    def __init__(
        self,
        store: LogStoreBackend,
        build_id: int,
        start_seq: int,
        batch_size: int = 200,
        flush_interval_s: float = 0.5,
        retry: Backoff = _RETRY,
        masker: Masker | None = None,
    ) -> None:
        if batch_size < 1 or flush_interval_s <= 0:
            raise ValueError("batch_size must be >= 1 and flush_interval_s > 0")
        self.build_id = build_id
        self._store = store
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retry = retry
        self._masker = masker if masker else None  # the build's secret values never reach the store
        self._lock = threading.Lock()  # guards the fields below; never held while the store works
        self._send_lock = threading.Lock()  # one append at a time, so batches reach the store in order
        self._pending: deque[LogLine] = deque()
        self._next_seq = start_seq
        self._closed = False
        self._failures = 0  # appends failed in a row: the backoff's attempt count
        self._retry_at = 0.0
        self._last_error: BaseException | None = None
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name=f"log-writer-{build_id}", daemon=True)
        self._timer.start()

    @property
    def pending(self) -> int:
        """Lines numbered but not yet stored; above zero for long means the store is down."""
        with self._lock:
            return len(self._pending)

    def write(self, progress: ProgressLine) -> LogLine:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"log writer of build {self.build_id} is closed")
            line = LogLine(
                build_id=self.build_id,
                seq=self._next_seq,
                stream=progress.stream,
                text=self._masker.mask(progress.text) if self._masker else progress.text,
                vertex=progress.vertex,
                ts=progress.ts,
            )
            self._next_seq += 1
            self._pending.append(line)
            full = len(self._pending) >= self._batch_size and time.monotonic() >= self._retry_at
        if full:
            self.flush()
        return line

    def flush(self, force: bool = False) -> bool:
        """Send pending lines unless the store is in backoff (or `force`); a store error is kept for a retry.

        Returns whether everything written so far is stored.
        """
        with self._send_lock:
            while True:
                with self._lock:
                    if not self._pending:
                        return True
                    if not force and time.monotonic() < self._retry_at:
                        return False
                    batch = list(islice(self._pending, _MAX_SEND))
                try:
                    self._store.append(batch)
                except Exception as exc:  # any failure: the lines stay queued and are resent later
                    with self._lock:
                        self._last_error = exc
                        self._failures += 1
                        delay = self._retry.delay(self._failures)
                        self._retry_at = time.monotonic() + delay
                        queued = len(self._pending)
                    logger.warning(
                        "log store append failed for build %s (%d lines queued), retrying in %.1fs: %r",
                        self.build_id,
                        queued,
                        delay,
                        exc,
                    )
                    return False
                with self._lock:
                    for _ in batch:
                        self._pending.popleft()
                    self._failures = 0
                    self._retry_at = 0.0
                    self._last_error = None

    def close(self) -> None:
        """Store everything, retrying until the deadline; raise LogsNotSaved rather than lose a line."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._timer.join()
        started = time.monotonic()
        deadline = started + self._retry.deadline_s
        while not self.flush(force=True):
            now = time.monotonic()
            if now >= deadline:
                with self._lock:
                    unsaved, cause = list(self._pending), self._last_error
                raise LogsNotSaved(
                    f"log store unavailable: {len(unsaved)} log lines of build {self.build_id} are unsaved "
                    f"(seq {unsaved[0].seq}..{unsaved[-1].seq}) after retrying for {now - started:.1f}s; "
                    f"last error: {cause!r}",
                    lines=unsaved,
                )
            with self._lock:
                wait = self._retry_at - now
            time.sleep(max(0.0, min(wait, deadline - now)))

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def __enter__(self) -> BufferedLogWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except LogsNotSaved as unsaved:
            # The build's own error says why it failed; the unsaved lines are reported alongside, not instead.
            logger.error("%s", unsaved)
            exc.add_note(str(unsaved))
