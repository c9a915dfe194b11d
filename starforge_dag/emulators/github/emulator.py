"""The GitHub emulator's state and what tests and the demo script on it: installations, repositories, pushes."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import app, checks
from .answers import RateLimit
from .auth import installation_json, new_private_key, public_key
from .deliveries import push_payload, send_event
from .faults import Faults
from .pulls import EmuPull, open_pull, push_pull, send_pull
from .records import EmuDelivery, EmuDeployment, EmuInstallation, EmuRepo, EmuToken, RecordedStatus
from .repos import GIT_PREFIX, git, repo_brief
from .served import ServedApp


class GitHubEmulator:
    """Start with `start()` (or as a context manager); `api_url` is what the App's settings point at."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        private_key: str | None = None,
        webhook_secret: str = "",
        webhook_url: str | None = None,
        token_ttl_s: int = 3600,
        drop_fraction: float = 0.0,
        seed: int = 0,
    ):
        self.app_id = app_id
        self.private_key = private_key or new_private_key()
        self._public_key = public_key(self.private_key)
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.token_ttl_s = token_ttl_s
        self.drop_fraction = drop_fraction
        self.drop_redeliveries = False  # True: redeliveries are dropped at the same rate as first deliveries
        self.faults = Faults(seed=seed)
        self.rate_limit = RateLimit()
        self._drops = random.Random(seed + 1)
        self._lock = threading.RLock()
        self._ids = iter(range(1000, 10**9))
        self.repos: dict[int, EmuRepo] = {}
        self.installations: dict[int, EmuInstallation] = {}
        self.tokens: dict[str, EmuToken] = {}
        self.jwts_seen: list[str] = []
        self.statuses: list[RecordedStatus] = []
        self.deployments: dict[int, EmuDeployment] = {}
        self.deliveries: list[EmuDelivery] = []
        self.check_suites: list[checks.EmuCheckSuite] = []
        self.requests: list[tuple[str, str, int]] = []
        self.pulls: dict[tuple[int, int], EmuPull] = {}
        self.collaborators: dict[tuple[int, str], str] = {}  # (repo id, login) -> admin | maintain | write | read
        self.members: dict[str, set[str]] = {}  # organization -> member logins
        self._served: ServedApp | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GitHubEmulator:
        self._served = ServedApp(self._asgi, name="GitHub emulator").start()
        self.port = self._served.port
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def _asgi(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        await app.asgi(self, scope, receive, send)

    # -- scripting (tests and the demo) -------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def clone_url(self, repo: EmuRepo) -> str:
        return f"{self.api_url}{GIT_PREFIX}{repo.full_name}.git"

    def add_installation(self, account: str) -> int:
        inst = EmuInstallation(self._next_id(), account, self._next_id())
        with self._lock:
            self.installations[inst.id] = inst
        return inst.id

    def add_repo(
        self, owner: str, name: str, path: Path | str, *, installation_id: int | None, private: bool = True
    ) -> EmuRepo:
        """Serve the bare repository at `path` as owner/name, reachable through the installation."""
        default = git(Path(path), "symbolic-ref", "--short", "HEAD").strip() or "main"
        repo = EmuRepo(self._next_id(), owner, name, Path(path), private, default, installation_id)
        with self._lock:
            self.repos[repo.id] = repo
        return repo

    def install(self, account: str, repo_ids: list[int]) -> int:
        """A new installation serving these repositories; sends the `installation` created event."""
        inst_id = self.add_installation(account)
        with self._lock:
            for rid in repo_ids:
                self.repos[rid].installation_id = inst_id
        self.send_event(
            "installation",
            {
                "action": "created",
                "installation": installation_json(self, self.installations[inst_id]),
                "repositories": [repo_brief(self.repos[r]) for r in repo_ids],
                "sender": {"login": account, "id": self.installations[inst_id].account_id},
            },
            installation_id=inst_id,
        )
        return inst_id

    def add_repos_to_installation(self, installation_id: int, repo_ids: list[int]) -> None:
        with self._lock:
            for rid in repo_ids:
                self.repos[rid].installation_id = installation_id
            inst = self.installations[installation_id]
        self.send_event(
            "installation_repositories",
            {
                "action": "added",
                "installation": installation_json(self, inst),
                "repository_selection": "selected",
                "repositories_added": [repo_brief(self.repos[r]) for r in repo_ids],
                "repositories_removed": [],
            },
            installation_id=installation_id,
        )

    def uninstall(self, installation_id: int) -> None:
        """The account removed the App: its tokens stop working and the `installation` deleted event is sent."""
        with self._lock:
            inst = self.installations.pop(installation_id)
            repos = [r for r in self.repos.values() if r.installation_id == installation_id]
            for repo in repos:
                repo.installation_id = None
            for token in self.tokens.values():
                if token.installation_id == installation_id:
                    token.revoked = True
        self.send_event(
            "installation",
            {
                "action": "deleted",
                "installation": installation_json(self, inst),
                "repositories": [repo_brief(r) for r in repos],
                "sender": {"login": inst.account, "id": inst.account_id},
            },
            installation_id=installation_id,
        )

    def rename_repo(self, repo_id: int, name: str, owner: str | None = None) -> None:
        with self._lock:
            repo = self.repos[repo_id]
            repo.name = name
            repo.owner = owner or repo.owner

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.revoked = True

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self.tokens)

    def statuses_for(self, repo_id: int, sha: str) -> list[RecordedStatus]:
        with self._lock:
            return [s for s in self.statuses if s.repo_id == repo_id and s.sha == sha]

    def deployments_for(self, repo_id: int, environment: str | None = None) -> list[EmuDeployment]:
        """A repository's deployments (of one environment when given), oldest first."""
        with self._lock:
            found = [d for d in self.deployments.values() if d.repo_id == repo_id]
            return sorted((d for d in found if environment in (None, d.environment)), key=lambda d: d.id)

    def push(self, repo_id: int, branch: str, before: str, after: str) -> EmuDelivery:
        """Send the `push` event of a push that already happened in the repository (before → after)."""
        repo = self.repos[repo_id]
        payload = push_payload(self, repo, branch, before, after)
        return self.send_event("push", payload, installation_id=repo.installation_id, repository_id=repo.id)

    # -- pull requests, forks and collaborators ------------------------------------------------

    def fork(self, repo_id: int, owner: str, path: Path | str) -> EmuRepo:
        """A fork of the repository owned by `owner`, served from the bare repository at `path` (not installed)."""
        with self._lock:
            name = self.repos[repo_id].name
        return self.add_repo(owner, name, path, installation_id=None, private=False)

    def add_collaborator(self, repo_id: int, login: str, permission: str = "write") -> None:
        with self._lock:
            self.collaborators[(repo_id, login.lower())] = permission

    def open_pull_request(
        self, repo_id: int, head_ref: str, sha: str, *, author: str, head_repo_id: int | None = None
    ) -> EmuPull:
        """Open a pull request of `sha` (on `head_ref` of the head repository, a fork or the base) and send `opened`."""
        pull = open_pull(self, repo_id, head_repo_id or repo_id, head_ref, sha, author)
        send_pull(self, pull, "opened", author)
        return pull

    def push_pull_request(self, pull: EmuPull, sha: str) -> EmuDelivery:
        """A new head commit on the pull request's branch: `synchronize`."""
        push_pull(self, pull, sha)
        return send_pull(self, pull, "synchronize", pull.author)

    def label_pull_request(self, pull: EmuPull, label: str, *, by: str) -> EmuDelivery:
        with self._lock:
            pull.labels.append(label)
        return send_pull(self, pull, "labeled", by, label=label)

    def close_pull_request(self, pull: EmuPull, *, merged: bool = False, by: str | None = None) -> EmuDelivery:
        with self._lock:
            pull.state, pull.merged = "closed", merged
        return send_pull(self, pull, "closed", by or pull.author)

    def reopen_pull_request(self, pull: EmuPull, *, by: str | None = None) -> EmuDelivery:
        with self._lock:
            pull.state, pull.merged = "open", False
        return send_pull(self, pull, "reopened", by or pull.author)

    def send_event(
        self, event: str, payload: dict[str, Any], *, installation_id: int | None, repository_id: int | None = None
    ) -> EmuDelivery:
        """Deliver a signed App webhook, or drop it (a failed delivery) with probability `drop_fraction`."""
        return send_event(self, event, payload, installation_id=installation_id, repository_id=repository_id)

    def add_check_suite(
        self, repo_id: int, sha: str, *, app: tuple[int, str, str] = checks.ACTIONS_APP, status: str = "queued"
    ) -> checks.EmuCheckSuite:
        """A check suite of the commit, not completed (app: its App's id, slug and name)."""
        return checks.add_suite(self, repo_id, sha, app=app, status=status)

    def complete_check_suite(
        self, suite: checks.EmuCheckSuite, conclusion: str, *, send: bool = True
    ) -> EmuDelivery | None:
        """Complete the suite with the conclusion; with `send`, deliver its `check_suite` completed event."""
        return checks.complete_suite(self, suite, conclusion, send=send)
