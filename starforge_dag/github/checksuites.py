"""Wait for CI on GitHub: `check_suite` events and the checks API settle the builds waiting for a commit's checks.

A `check_suite` event tells of one suite. A suite that did not pass settles the waiting builds of its
commit at once; one that passed does not tell whether other suites are still running (GitHub sends
`requested` only to the suite's own App), so the commit's suites are then listed through the checks
API. The reconciler lists them for every build still waiting, a bounded number per pass, so a missed
event never strands a build, and it applies the timeout and the grace period of commits without CI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from starforge_dag.core import checks
from starforge_dag.core.inputs import InvalidInput, check_commit_id, check_text
from starforge_dag.core.models import Build, utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore
from starforge_dag.store.github import AppRepo, GitHubStore

from .app import CheckSuite, GitHubApp, GitHubAppError
from .push import parse_event

ACTOR = "checks"
HANDLED_ACTIONS = ("completed", "requested", "rerequested")
PASS_LIMIT = 50  # waiting builds one reconciler pass looks at


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


GitHubId = Annotated[int, Field(gt=0, lt=2**63)]
Word = Annotated[str, Field(max_length=50), AfterValidator(partial(check_text, what="value", max_chars=50))]
Name = Annotated[str, Field(max_length=200), AfterValidator(partial(check_text, what="value", max_chars=200))]


class _SuiteApp(_Payload):
    id: GitHubId
    slug: Name = ""
    name: Name = ""


class _Suite(_Payload):
    id: GitHubId
    head_sha: Name
    status: Word | None = None
    conclusion: Word | None = None
    app: _SuiteApp


class _Repository(_Payload):
    id: GitHubId
    full_name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}$")


class _Installation(_Payload):
    id: GitHubId


class CheckSuiteEvent(_Payload):
    action: Word
    check_suite: _Suite
    repository: _Repository
    installation: _Installation | None = None

    @property
    def suite(self) -> checks.Suite:
        s = self.check_suite
        return checks.Suite(s.id, s.app.name or s.app.slug or f"app {s.app.id}", s.status or "", s.conclusion, s.app.id)


def parse_check_suite(text: str) -> CheckSuiteEvent:
    """JSON text to a CheckSuiteEvent; wrong types, missing fields, NUL or over-long strings are refused."""
    return parse_event(text, CheckSuiteEvent, "check_suite")


def invalid_check_suite(event: CheckSuiteEvent) -> str | None:
    """Why a well-formed event names no commit: `head_sha` is not a full commit id."""
    try:
        check_commit_id(event.check_suite.head_sha, "check_suite.head_sha")
    except InvalidInput as exc:
        return str(exc)
    return None


def to_suite(found: CheckSuite) -> checks.Suite:
    app = found.app
    name = (app.name or app.slug) if app else None
    return checks.Suite(
        found.id,
        name or (f"app {app.id}" if app and app.id else "an unknown app"),
        found.status or "",
        found.conclusion,
        app.id if app else None,
    )


@dataclass
class Settled:
    queued: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    timed_out: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: Settled) -> None:
        for name in ("queued", "refused", "timed_out", "waiting", "errors"):
            getattr(self, name).extend(getattr(other, name))

    def __str__(self) -> str:
        text = (
            f"queued {self.queued}, not built {self.refused}, timed out {self.timed_out}, "
            f"still waiting {len(self.waiting)}"
        )
        return text + (f"; {len(self.errors)} errors: {'; '.join(self.errors[:3])}" if self.errors else "")


@dataclass(frozen=True)
class Policy:
    timeout_s: int
    grace_s: int
    own_app_id: int | None = None


def settle(store: BuildStore, build: Build, verdict: checks.Verdict) -> Settled:
    """Apply a verdict to a build that may have stopped waiting meanwhile (then nothing happens)."""
    done = Settled()
    match verdict:
        case checks.Release(reason=reason):
            if store.settle_waiting(build.id, BuildState.QUEUED, reason, ACTOR):
                done.queued.append(build.id)
        case checks.Refuse(reason=reason):
            if store.settle_waiting(build.id, BuildState.CHECKS_FAILED, reason, ACTOR):
                done.refused.append(build.id)
        case checks.GiveUp(reason=reason):
            if store.settle_waiting(build.id, BuildState.TIMED_OUT, reason, ACTOR):
                done.timed_out.append(build.id)
        case checks.KeepWaiting():
            done.waiting.append(build.id)
    return done


def judge(
    store: BuildStore,
    build: Build,
    suites: Sequence[checks.Suite] | None,
    policy: Policy,
    now: datetime,
    failure: str | None = None,
) -> Settled:
    """Settle one waiting build on the suites known (None: GitHub could not say; only the timeout can apply)."""
    if not store.waits_for_checks(build.app_id):
        return settle(store, build, checks.Release("the app no longer waits for checks"))
    if suites is None:
        waited = (now - build.created_at).total_seconds()
        if waited < policy.timeout_s:
            return Settled(waiting=[build.id])
        why = f"timed out waiting for checks: GitHub could not list them {policy.timeout_s}s after the push"
        return settle(store, build, checks.GiveUp(f"{why} ({failure})" if failure else why))
    verdict = checks.decide(
        suites,
        queued_at=build.created_at,
        now=now,
        timeout_s=policy.timeout_s,
        grace_s=policy.grace_s,
        own_app_id=policy.own_app_id,
    )
    return settle(store, build, verdict)


def _route(gh: GitHubStore, app_id: int) -> AppRepo | None:
    link = gh.app_repo(app_id)
    return link if link is not None and link.installation_id is not None and link.full_name else None


def list_suites(app: GitHubApp | None, link: AppRepo | None, sha: str) -> tuple[list[checks.Suite] | None, str]:
    """The commit's suites through the checks API, or None and why not."""
    if app is None:
        return None, "no GitHub App configured"
    if link is None or link.installation_id is None or not link.full_name:
        return None, "the app's repository is not reached through the GitHub App"
    try:
        return [to_suite(s) for s in app.check_suites(link.installation_id, link.full_name, sha)], ""
    except GitHubAppError as exc:
        return None, str(exc)


def on_check_suite(
    store: BuildStore, gh: GitHubStore, app: GitHubApp | None, event: CheckSuiteEvent, policy: Policy
) -> str:
    """What a `completed` check suite event settles; the answer's reason. Unknown repositories settle nothing."""
    sha = event.check_suite.head_sha
    links = [link for link in gh.app_repos(event.repository.id) if not link.paused_reason]
    if event.installation is not None:
        links = [link for link in links if link.installation_id == event.installation.id]
    if not links:
        return f"no app follows repository {event.repository.full_name} through installation " + (
            str(event.installation.id) if event.installation else "(none given)"
        )
    if event.action != "completed":
        return f"check_suite {event.action} needs nothing: builds wait for completed suites"
    suite = event.suite
    if policy.own_app_id is not None and suite.app_id == policy.own_app_id:
        return "a check suite of Starforge's own App does not hold builds"
    builds = store.waiting_builds(commit_sha=sha, app_ids=[link.app_id for link in links], limit=1000)
    if not builds:
        return f"no build waits for the checks of {sha[:12]}"
    done = Settled()
    now = utcnow()
    for build in builds:
        if suite.completed and not suite.passed:
            done.add(judge(store, build, [suite], policy, now))
            continue
        listed, failure = list_suites(app, _route(gh, build.app_id), sha)
        if listed is None:
            done.waiting.append(build.id)
            done.errors.append(f"build {build.id}: {failure}; the reconciler asks again")
            continue
        done.add(judge(store, build, checks.merge(listed, [suite]), policy, now))
    return str(done)


@dataclass
class CheckPass:
    settled: Settled = field(default_factory=Settled)
    checked: int = 0
    last_build_id: int | None = None  # the next pass starts after this build (0: from the first again)

    def __str__(self) -> str:
        return f"checked {self.checked} waiting builds: {self.settled}"


def reconcile_waiting(
    store: BuildStore,
    gh: GitHubStore,
    app: GitHubApp | None,
    policy: Policy,
    *,
    after_id: int = 0,
    limit: int = PASS_LIMIT,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utcnow,
) -> CheckPass:
    """Ask GitHub for the suites of up to `limit` waiting builds, oldest after `after_id` first, and settle them.

    An installation GitHub rate limits is not asked again in the pass (its builds wait for the next one); the
    timeout applies even while GitHub cannot answer. Builds of one commit and app share one listing.
    """
    report = CheckPass()
    builds = store.waiting_builds(after_id=after_id, limit=limit)
    if not builds and after_id:
        builds = store.waiting_builds(limit=limit)
    blocked: set[int] = set()
    listings: dict[tuple[int, str], tuple[list[checks.Suite] | None, str]] = {}
    for build in builds:
        if clock() >= deadline:
            break
        report.checked += 1
        report.last_build_id = build.id
        link = _route(gh, build.app_id)
        key = (build.app_id, build.commit_sha)
        if link is not None and link.installation_id in blocked:
            listings.setdefault(key, (None, "installation rate limited in this pass"))
        if key not in listings:
            listings[key] = _listing(app, link, build.commit_sha, blocked)
        listed, failure = listings[key]
        if listed is None and failure:
            report.settled.errors.append(f"build {build.id}: {failure}")
        report.settled.add(judge(store, build, listed, policy, now(), failure))
    if len(builds) < limit:
        report.last_build_id = 0 if report.checked == len(builds) else report.last_build_id
    return report


def _listing(
    app: GitHubApp | None, link: AppRepo | None, sha: str, blocked: set[int]
) -> tuple[list[checks.Suite] | None, str]:
    if app is None or link is None or link.installation_id is None or not link.full_name:
        return list_suites(app, link, sha)
    try:
        return [to_suite(s) for s in app.check_suites(link.installation_id, link.full_name, sha)], ""
    except GitHubAppError as exc:
        if exc.retry_after is not None:
            blocked.add(link.installation_id)
        return None, str(exc)
