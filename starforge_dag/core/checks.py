"""Wait for CI: whether a `waiting` build may be queued, is refused by a check suite, or has waited too long.

An app with `wait_for_checks` queues a push as `waiting`. The build waits for every check suite GitHub
reports for the commit (Starforge's own App's suites excepted) and then:

- is queued when every suite completed with `success`, `neutral` or `skipped`;
- is not built (`checks_failed`, naming the suite) as soon as one suite completed with any other
  conclusion (`failure`, `cancelled`, `timed_out`, `action_required`, `stale`, `startup_failure`...),
  without waiting for the others;
- is `timed_out` when the suites have not all completed `timeout_s` after the push;
- with no suite reported at all, keeps waiting for `grace_s` after the push (CI systems register their
  suite a moment after the push), then is queued: GitHub reports no suites for a repository without CI.

The decision is pure; the store applies it to builds still `waiting` (a newer push may have superseded one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

PASSING = frozenset({"success", "neutral", "skipped"})
COMPLETED = "completed"


@dataclass(frozen=True)
class Suite:
    """One check suite of a commit as GitHub reports it (`conclusion` is None until it completed)."""

    id: int
    app: str  # the name of the App that owns the suite (e.g. "GitHub Actions")
    status: str
    conclusion: str | None = None
    app_id: int | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def passed(self) -> bool:
        return self.completed and self.conclusion in PASSING

    def describe(self) -> str:
        return f"check suite {self.id} of {self.app}"


@dataclass(frozen=True)
class KeepWaiting:
    reason: str


@dataclass(frozen=True)
class Release:
    """Queue the build: its checks passed (or the commit has none)."""

    reason: str


@dataclass(frozen=True)
class Refuse:
    """Never build it: a suite did not pass."""

    suite: Suite
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """Waited longer than the timeout: the build ends `timed_out`."""

    reason: str


Verdict = KeepWaiting | Release | Refuse | GiveUp


def merge(listed: Iterable[Suite], newer: Iterable[Suite]) -> list[Suite]:
    """The suites GitHub listed, updated by suites an event told of since (by id; a completed one is never undone)."""
    by_id = {suite.id: suite for suite in listed}
    for suite in newer:
        known = by_id.get(suite.id)
        if known is None or not known.completed or suite.completed:
            by_id[suite.id] = suite
    return sorted(by_id.values(), key=lambda s: s.id)


def decide(
    suites: Sequence[Suite],
    *,
    queued_at: datetime,
    now: datetime,
    timeout_s: int,
    grace_s: int,
    own_app_id: int | None = None,
) -> Verdict:
    """The verdict on a waiting build of a commit whose suites are `suites`, pushed at `queued_at`."""
    counted = [s for s in suites if own_app_id is None or s.app_id != own_app_id]
    for suite in counted:
        if suite.completed and not suite.passed:
            conclusion = suite.conclusion or "without a conclusion"
            return Refuse(suite, f"not built: {suite.describe()} concluded {conclusion}")
    waited = (now - queued_at).total_seconds()
    pending = [s for s in counted if not s.completed]
    if waited >= timeout_s and pending:
        names = ", ".join(s.describe() for s in pending[:5])
        return GiveUp(f"timed out waiting for checks: {names} still incomplete {timeout_s}s after the push")
    if pending:
        names = ", ".join(f"{s.describe()} ({s.status})" for s in pending[:5])
        return KeepWaiting(f"waiting for {names}")
    if not counted:
        if waited < grace_s:
            return KeepWaiting(f"no check suite reported yet; waiting up to {grace_s}s after the push for one")
        return Release(f"no check suite reported {grace_s}s after the push: the commit has no CI, building")
    passed = ", ".join(f"{s.describe()} {s.conclusion}" for s in counted[:5])
    more = f" and {len(counted) - 5} more" if len(counted) > 5 else ""
    return Release(f"checks passed: {passed}{more}")
