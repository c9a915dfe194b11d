"""Which desired-state changes still need an `app_image` materialization: a build's run reports its own."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import Enum

from .models import DesiredChange


class RunProgress(Enum):
    RUNNING = "running"  # may still report the change itself
    ENDED = "ended"  # whatever it reported is in the event log
    UNKNOWN = "unknown"  # no such run (deleted): nobody else will report it


def changes_to_report(
    changes: Sequence[DesiredChange], runs: Mapping[str, RunProgress], materialized: Collection[int]
) -> tuple[list[DesiredChange], int | None]:
    """Changes to report, in revision order, and the revision the cursor may move to.

    Stops before a change whose run is still going (it reports it, or the next tick does), so nothing is
    skipped; a change a run already materialized (its revision is in `materialized`) is not reported twice.
    """
    report: list[DesiredChange] = []
    cursor: int | None = None
    for change in sorted(changes, key=lambda c: c.revision):
        if change.run_id is not None:
            progress = runs.get(change.run_id, RunProgress.UNKNOWN)
            if progress is RunProgress.RUNNING:
                break
            if change.revision not in materialized:
                report.append(change)
        else:
            report.append(change)
        cursor = change.revision
    return report, cursor
