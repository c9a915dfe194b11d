"""Commit statuses: what each build state means on GitHub, and the sender that drains the status outbox.

Rows are written in the transaction of the build transition they describe; the sender delivers
them later, so GitHub being slow, down or rate limiting never blocks or fails a build. Per commit
and context only the newest row is ever sent (older unsent ones are skipped: GitHub shows the
latest status of a context), one at a time, so a late `pending` never overwrites `success`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from starforge_dag.core.links import PageLinks
from starforge_dag.core.states import BuildState
from starforge_dag.store.github import StatusRow

from .app import GitHubApp, GitHubAppError

R = TypeVar("R")

MAX_DESCRIPTION = 140
MAX_ATTEMPTS = 25
MAX_BACKOFF_S = 60.0

_MEANING: dict[BuildState, tuple[str, str]] = {
    BuildState.WAITING: ("pending", "Waiting for the commit's checks"),
    BuildState.QUEUED: ("pending", "Queued"),
    BuildState.CLONING: ("pending", "Cloning the commit"),
    BuildState.PLANNING: ("pending", "Planning the build"),
    BuildState.BUILDING: ("pending", "Building the image"),
    BuildState.PUSHING: ("pending", "Pushing the image"),
    BuildState.SUCCEEDED: ("success", "Image built and pushed"),
    BuildState.FAILED: ("failure", "Build failed"),
    BuildState.CANCELED: ("error", "Build canceled"),
    BuildState.SUPERSEDED: ("error", "Superseded by a newer push"),
    BuildState.TIMED_OUT: ("error", "Build timed out"),
    BuildState.CHECKS_FAILED: ("failure", "Not built"),
}


_EXPLAINED = (
    BuildState.FAILED,
    BuildState.TIMED_OUT,
    BuildState.CANCELED,
    BuildState.SUPERSEDED,
)


def commit_status(state: BuildState, reason: str = "", explanation: str | None = None) -> tuple[str, str]:
    """(GitHub state, short description) of a build state; failures say why (the explanation's title when there is
    one, else the reason), cut to GitHub's 140 characters."""
    github_state, text = _MEANING[BuildState(state)]
    if state in _EXPLAINED and explanation:
        text = f"{text}: {explanation}"
    elif state in (BuildState.FAILED, BuildState.TIMED_OUT, BuildState.CHECKS_FAILED) and reason:
        text = f"{text}: {reason}"
    text = " ".join(text.split())
    return github_state, text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def status_context(prefix: str, workspace: str, app: str) -> str:
    """One context per app, so several apps built from one repository report side by side."""
    return f"{prefix}/{workspace}/{app}"


def target_url(build_id: int, run_id: str | None, public_url: str | None, dagster_url: str | None) -> str | None:
    """The API's build page when the API has a public URL, else the Dagster run, else no link."""
    if public_url:
        return f"{public_url.rstrip('/')}/builds/{build_id}"
    if dagster_url and run_id:
        return f"{dagster_url.rstrip('/')}/runs/{run_id}"
    return None


@dataclass(frozen=True)
class StatusStyle:
    """How statuses look: the context prefix, where their links point (a build's page when `links` signs them)
    and what explains a build that did not succeed."""

    context_prefix: str = "starforge"
    public_url: str | None = None
    dagster_url: str | None = None
    links: PageLinks | None = None
    explain: Callable[[int], str | None] | None = None

    def target(self, row: StatusRow, now: datetime) -> str | None:
        if self.links is not None and self.links.base_url:
            return self.links.url(row.build_id, now)
        return target_url(row.build_id, row.run_id, self.public_url, self.dagster_url)

    def explanation(self, row: StatusRow) -> str | None:
        """An explanation that cannot be read (the log store is down) never holds a status back."""
        if self.explain is None or row.build_state not in _EXPLAINED:
            return None
        try:
            return self.explain(row.build_id)
        except Exception:
            return None


class StatusOutbox(Protocol):
    def unsent(self, limit: int) -> list[StatusRow]: ...
    def route(self, repo_id: int) -> tuple[int | None, str] | None: ...
    def mark(self, row_ids: Sequence[int], outcome: str, error: str | None = None) -> None: ...
    def retry_later(self, row_id: int, at: datetime, error: str, *, failed: bool = True) -> None: ...


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    given_up: int = 0
    left: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, skipped {self.skipped} stale, deferred {self.deferred}, gave up {self.given_up}, "
            f"left {self.left} for the next pass"
        )


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential with full jitter, capped: 1, 2, 4 … seconds."""
    base = min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)
    return (rng or random).uniform(base / 2, base)


class Retries(Protocol):
    def route(self, repo_id: int) -> tuple[int | None, str] | None: ...
    def retry_later(self, row_id: int, at: datetime, error: str, *, failed: bool = True) -> None: ...


def routes_of(outbox: Retries, repo_ids: Sequence[int]) -> dict[int, tuple[int | None, str] | None]:
    """Each repository's route (installation, full name), looked up once however many rows it has."""
    return {repo_id: outbox.route(repo_id) for repo_id in dict.fromkeys(repo_ids)}


def failure_outcome(
    exc: GitHubAppError,
    attempts: int,
    row_id: int,
    outbox: Retries,
    give_up: Callable[[str], None],
    limits: tuple[int, dict[int, float]],
    now: Callable[[], datetime],
) -> str:
    """What a failed call to GitHub leaves an outbox row at, after `attempts` failed attempts of its own.

    A Retry-After blocks the installation for the rest of the pass and is waited exactly (not this row's failure);
    a transient error, or a 401/404 (a token or an installation GitHub has not caught up with), is retried with
    backoff until MAX_ATTEMPTS; anything else gives the row up.
    """
    installation_id, blocked = limits
    if exc.retry_after is not None:
        blocked[installation_id] = exc.retry_after
        outbox.retry_later(row_id, now() + timedelta(seconds=exc.retry_after), str(exc), failed=False)
        return "deferred"
    if (exc.transient or exc.status in (401, 404)) and attempts + 1 < MAX_ATTEMPTS:
        outbox.retry_later(row_id, now() + timedelta(seconds=backoff(attempts + 1)), str(exc))
        return "deferred"
    give_up(str(exc))
    return "given_up"


def tally(report: SendReport, send: Callable[[R], str], rows: Sequence[R], workers: int) -> SendReport:
    """Send the rows on up to `workers` threads and count each outcome (a SendReport field name) in `report`."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rows) or 1))) as pool:
        for outcome in pool.map(send, rows):
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def send_statuses(
    outbox: StatusOutbox,
    app: GitHubApp,
    style: StatusStyle,
    now: Callable[[], datetime],
    *,
    limit: int = 1000,
    workers: int = 8,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> SendReport:
    """One pass: per (repo, commit, app), skip stale rows and send the newest once it is due.

    No call to GitHub starts once `clock()` reaches `deadline`; what is left stays unsent for the next pass.
    """
    report = SendReport()
    latest: dict[tuple[int, str, int], StatusRow] = {}
    stale: list[int] = []
    for row in outbox.unsent(limit):  # oldest first
        key = (row.repo_id, row.commit_sha, row.app_id)
        if key in latest:
            stale.append(latest[key].id)
        latest[key] = row
    if stale:
        outbox.mark(stale, "skipped")
        report.skipped = len(stale)
    moment = now()
    due = [row for row in latest.values() if row.next_attempt_at <= moment]
    report.deferred = len(latest) - len(due)
    routes = routes_of(outbox, [row.repo_id for row in due])
    blocked: dict[int, float] = {}  # installations rate limited in this pass: seconds GitHub asked to wait

    def send(row: StatusRow) -> str:
        if clock() >= deadline:
            return "left"
        route = routes[row.repo_id]
        installation_id, full_name = route or (None, "")
        if installation_id is None:
            outbox.mark([row.id], "dropped", "the App is not installed for this repository")
            return "given_up"
        if installation_id in blocked:
            wait = blocked[installation_id]
            outbox.retry_later(row.id, now() + timedelta(seconds=wait), "installation rate limited", failed=False)
            return "deferred"
        state, description = commit_status(row.build_state, row.reason, style.explanation(row))
        try:
            app.create_status(
                installation_id,
                full_name,
                row.commit_sha,
                state,
                description=description,
                target_url=style.target(row, now()),
                context=status_context(style.context_prefix, row.workspace, row.app),
            )
        except GitHubAppError as exc:

            def give_up(error: str) -> None:
                outbox.mark([row.id], "failed", error)

            return failure_outcome(exc, row.attempts, row.id, outbox, give_up, (installation_id, blocked), now)
        outbox.mark([row.id], "sent")
        return "sent"

    return tally(report, send, due, workers)
