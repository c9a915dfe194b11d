"""The log store port: where a build's numbered log lines live, whatever the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType

from ..core.models import LogLine


class LogStoreBackend(ABC):
    """Port: append is idempotent per (build_id, seq), so a writer may resend after any failure."""

    @abstractmethod
    def append(self, lines: Sequence[LogLine]) -> None:
        """Store a batch; lines already stored under the same (build_id, seq) are kept, not duplicated."""

    @abstractmethod
    def read(self, build_id: int, after_seq: int = -1, limit: int = 1000) -> list[LogLine]:
        """Lines with seq > after_seq in seq order, so a reader pages by passing the last seq it saw."""

    @abstractmethod
    def last_seq(self, build_id: int) -> int:
        """Highest stored seq, -1 for none: where a resumed build continues numbering."""

    @abstractmethod
    def count(self, build_id: int) -> int:
        """Distinct stored lines of a build, for checks that nothing was lost or doubled."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection the store owns."""

    def __enter__(self) -> LogStoreBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def as_utc(ts: datetime) -> datetime:
    """Engines hand back naive or local-zone timestamps; callers always get aware UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
