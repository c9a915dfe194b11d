"""Keeping Starforge in step with GitHub: installation events, apps by repository id, and missed pushes.

Apps follow repositories by GitHub's repository id, so a rename or a transfer changes nothing.
`installation` and `installation_repositories` events record which installation serves which
repository; losing it pauses the repository's apps with the reason. Pushes whose webhook never
arrived are caught twice: failed deliveries are redelivered through the App's deliveries API, and
the reconciler compares every app's branch head with its builds and queues what was never built.
Whichever of a push and the reconciler comes first builds; the other adds nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.core.models import App
from starforge_dag.core.states import ACTIVE, BuildState
from starforge_dag.store import BuildStore
from starforge_dag.store.github import GitHubStore
from starforge_dag.store.push_lookup import PushLookup

from .app import GitHubApp, GitHubAppError

RECONCILE_TRIGGER = "reconcile"
REDELIVERY_WINDOW = timedelta(hours=24)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


_FULL_NAME = r"^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}$"
GitHubId = Annotated[int, Field(gt=0, lt=2**63)]  # GitHub's ids are positive and fit the tables' BIGINT


class _Account(_Payload):
    login: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")


class _Installation(_Payload):
    id: GitHubId
    account: _Account = Field(default_factory=_Account)


class _RepoBrief(_Payload):
    id: GitHubId
    full_name: str = Field(pattern=_FULL_NAME)


class InstallationEvent(_Payload):
    """`installation` (created, deleted, suspend, unsuspend, new_permissions_accepted) and `installation_repositories`."""

    action: str = Field(max_length=100)
    installation: _Installation
    repositories: list[_RepoBrief] = Field(default_factory=list, max_length=10_000)
    repositories_added: list[_RepoBrief] = Field(default_factory=list, max_length=10_000)
    repositories_removed: list[_RepoBrief] = Field(default_factory=list, max_length=10_000)


def apply_installation_event(store: BuildStore, gh: GitHubStore, event: str, payload: dict[str, Any]) -> str:
    """Record what the event says about installations and repositories; returns what changed, for the answer.

    Apps that lose their installation pause, and their queued or running builds are canceled with the reason.
    """
    summary, paused = _apply(gh, event, InstallationEvent.model_validate(payload))
    for app_id in paused:
        link = gh.app_repo(app_id)
        reason = link.paused_reason if link and link.paused_reason else "paused"
        for build in store.list_builds(app_id=app_id, limit=1000, statuses=sorted(ACTIVE)):
            try:
                store.request_cancel(build.id, "github", reason)
            except IllegalTransition:
                pass  # it ended meanwhile
    return summary


def _apply(gh: GitHubStore, event: str, parsed: InstallationEvent) -> tuple[str, list[int]]:
    inst = parsed.installation
    if event == "installation" and parsed.action in ("deleted", "suspend"):
        verb = "uninstalled" if parsed.action == "deleted" else "suspended"
        gh.save_installation(inst.id, inst.account.login, active=False)
        reason = f"paused: the GitHub App was {verb} on {inst.account.login or f'installation {inst.id}'}"
        paused = gh.installation_removed(inst.id, reason)
        return f"installation {inst.id} {verb}; paused apps {paused}", paused
    if event == "installation" and parsed.action in ("created", "unsuspend", "new_permissions_accepted"):
        gh.save_installation(inst.id, inst.account.login, active=True)
        resumed = gh.repos_added(inst.id, [(r.id, r.full_name) for r in parsed.repositories])
        count = len(parsed.repositories)
        return f"installation {inst.id} {parsed.action}; {count} repositories; resumed apps {resumed}", []
    if event == "installation_repositories":
        resumed = gh.repos_added(inst.id, [(r.id, r.full_name) for r in parsed.repositories_added])
        removed = [r.id for r in parsed.repositories_removed]
        paused = gh.repos_removed(removed, f"paused: repository removed from GitHub App installation {inst.id}")
        return f"installation {inst.id}: resumed apps {resumed}, paused apps {paused}", paused
    return f"{event} {parsed.action} needs nothing", []


@dataclass
class PushTargets:
    """The apps a push concerns: to decide on, and those left out with why."""

    apps: list[App] = field(default_factory=list)
    left_out: list[tuple[App, str]] = field(default_factory=list)


def apps_for_push(lookup: PushLookup, repo_id: int | None, sha: str, *, branch: bool = True) -> PushTargets:
    """Apps linked by repository id join those matched by name; paused or already reconciled ones are left out
    (`branch=False`, a pull request's head: what the reconciler queued for the branch does not count)."""
    targets = PushTargets()
    for app in sorted(lookup.apps, key=lambda a: a.id):
        link = lookup.links.get(app.id)
        if link is not None and repo_id is not None and link.repo_id != repo_id:
            targets.left_out.append((app, f"app follows repository id {link.repo_id}, not {repo_id}"))
        elif link is not None and link.paused_reason:
            targets.left_out.append((app, link.paused_reason))
        elif branch and lookup.seen.get(app.id) == RECONCILE_TRIGGER:
            targets.left_out.append((app, f"commit {sha[:12]} was already queued by the reconciler"))
        else:
            targets.apps.append(app)
    return targets


@dataclass
class ReconcileReport:
    queued: list[int] = field(default_factory=list)
    checked: int = 0
    left: int = 0
    last_app_id: int | None = None  # the pass that runs out of time resumes after this app
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"checked {self.checked} apps, left {self.left} for the next pass, queued builds {self.queued}"
        return text + (f"; {len(self.errors)} errors: {'; '.join(self.errors[:3])}" if self.errors else "")


def reconcile_heads(
    store: BuildStore,
    gh: GitHubStore,
    app: GitHubApp,
    *,
    after_app_id: int = 0,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> ReconcileReport:
    """Queue a `reconcile` build for every app whose branch head was never built (nor ignored by its rules).

    Apps are checked in id order starting after `after_app_id` and wrapping around, so passes cut short by
    `deadline` take turns over every app instead of always checking the same first ones.
    """
    report = ReconcileReport()
    names: dict[int, str] = {}
    links = sorted(
        (
            (link, link.installation_id)
            for link in gh.app_repos()
            if not link.paused_reason and link.installation_id is not None
        ),
        key=lambda pair: (pair[0].app_id <= after_app_id, pair[0].app_id),
    )
    for position, (link, installation_id) in enumerate(links):
        if clock() >= deadline:
            report.left = len(links) - position
            break
        report.checked += 1
        report.last_app_id = link.app_id
        target = store.get_app_by_id(link.app_id)
        if target.archived or not target.auto_build:
            continue  # removed apps build nothing; without auto_build only pushes are recorded
        try:
            if link.repo_id not in names:
                repo = app.repository_by_id(installation_id, link.repo_id)
                names[link.repo_id] = repo.full_name
                if repo.full_name != link.full_name:
                    gh.rename_repo(link.repo_id, repo.full_name)
            head = app.branch_head(installation_id, names[link.repo_id], target.branch)
        except GitHubAppError as exc:
            report.errors.append(f"{target.workspace}/{target.name}: {exc}")
            continue
        if head is None or gh.seen(target.id, head) == "ignored":
            continue
        if any(state != BuildState.SUPERSEDED for state in gh.build_states(target.id, head)):
            continue
        outcome = store.enqueue(target, target.branch, head, trigger=RECONCILE_TRIGGER, actor="reconciler")
        gh.see(target.id, head, RECONCILE_TRIGGER)
        if outcome.created:
            report.queued.append(outcome.build.id)
    return report


@dataclass
class RedeliveryReport:
    redelivered: list[str] = field(default_factory=list)
    left: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"redelivered {len(self.redelivered)} failed deliveries, left {self.left} for the next pass" + (
            f"; {len(self.errors)} errors: {'; '.join(self.errors[:3])}" if self.errors else ""
        )


def redeliver_failed(
    gh: GitHubStore,
    app: GitHubApp,
    now: datetime | None = None,
    *,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> RedeliveryReport:
    """Ask GitHub once to redeliver every recent delivery none of whose attempts we answered with 2xx.

    No redelivery is asked for once `clock()` reaches `deadline`; the next pass finds the rest still failed.
    """
    report = RedeliveryReport()
    since = (now or datetime.now(UTC)) - REDELIVERY_WINDOW
    try:
        deliveries = app.deliveries()
    except GitHubAppError as exc:
        report.errors.append(str(exc))
        return report
    answered = {d.guid for d in deliveries if d.ok}
    newest_failed: dict[str, int] = {}
    later_push: set[int] = set()  # repositories with an answered push newer than the delivery looked at
    for d in deliveries:  # newest first
        repository_id = d.repository_id if d.event == "push" else None
        is_push = repository_id is not None
        if d.guid in answered or datetime.fromisoformat(d.delivered_at.replace("Z", "+00:00")) < since:
            if repository_id is not None and d.ok:
                later_push.add(repository_id)
            continue
        if is_push and d.repository_id in later_push:
            continue  # a newer push was built; the reconciler covers that branch's head, an old one would not help
        newest_failed.setdefault(d.guid, d.id)
    for position, (guid, delivery_id) in enumerate(newest_failed.items()):
        if clock() >= deadline:
            report.left = len(newest_failed) - position
            break
        if not gh.claim_redelivery(guid, delivery_id):
            continue
        try:
            app.redeliver(delivery_id)
        except GitHubAppError as exc:
            gh.release_redelivery(guid)
            report.errors.append(str(exc))
            continue
        report.redelivered.append(guid)
    return report
