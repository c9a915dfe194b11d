"""A GitHub App set-up: the emulator, settings pointing at it, the API serving webhooks, linked apps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from support.gitrepos import GitRepo, git

from starforge_dag.api import create_app
from starforge_dag.core.models import App, utcnow
from starforge_dag.definitions import resources_for
from starforge_dag.emulators.github import EmuRepo, GitHubEmulator, ServedApp
from starforge_dag.github.app import GitHubApp
from starforge_dag.github.deployments import send_deployments
from starforge_dag.github.statuses import SendReport, send_statuses
from starforge_dag.logs import open_log_store
from starforge_dag.pages.explain import explain_build
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store
from starforge_dag.store.deployments import DeploymentStore
from starforge_dag.store.github import GitHubStore


@dataclass
class Linked:
    """An app following a private GitHub repository served by the emulator."""

    git: GitRepo
    repo: EmuRepo
    installation_id: int
    app: App


class GitHubWorld:
    def __init__(self, emulator: GitHubEmulator, settings: Settings, root: Path):
        self.emulator = emulator
        self.settings = settings
        self.store: BuildStore = open_store(settings.resolved_database_url)
        self.gh = GitHubStore(self.store.engine)
        self.deployments = DeploymentStore(self.store.engine)
        self.root = root
        self._installations: dict[str, int] = {}

    def app(self) -> GitHubApp:
        return GitHubApp(self.emulator.app_id, self.emulator.private_key, self.emulator.api_url)

    def linked_app(self, name: str, files: dict[str, str] | None = None, account: str = "acme") -> tuple[Linked, str]:
        """A private repository with one commit, installed for the App, and an app following it by id."""
        git = GitRepo(self.root, name)
        sha = git.commit(files or {"Dockerfile": "FROM scratch\n"}, "first")
        if account not in self._installations:
            self._installations[account] = self.emulator.add_installation(account)
        inst = self._installations[account]
        repo = self.emulator.add_repo(account, name, git.bare, installation_id=inst)
        url = self.emulator.clone_url(repo)
        app = self.store.add_app(account, name, url, "main", repo_full_name=repo.full_name)
        self.gh.link_app(app.id, repo.id, repo.full_name, inst)
        return Linked(git, repo, inst, app), sha

    def push(self, linked: Linked, files: dict[str, str], message: str = "change") -> str:
        old = self.head(linked)
        sha = linked.git.commit(files, message)
        self.emulator.push(linked.repo.id, "main", old, sha)
        return sha

    def drain_statuses(self, deadline_s: float = 60.0) -> list[SendReport]:
        """Run the sender until the outbox is empty (what the sensor does, tick after tick, with the sensor's style:
        links to build pages, failures explained); its reports."""
        deadline = time.monotonic() + deadline_s
        reports: list[SendReport] = []
        with open_log_store(self.settings.log_store_dsn, self.settings.resolved_database_url) as logs:

            def explain(build_id: int) -> str | None:
                found = explain_build(self.store, logs, build_id)
                return found.title if found else None

            style = resources_for(self.settings)["github"].style(explain)  # type: ignore[attr-defined]
            while self.gh.unsent(1):
                assert time.monotonic() < deadline, f"outbox not drained: {len(self.gh.unsent(10_000))} unsent"
                reports.append(send_statuses(self.gh, self.app(), style, utcnow))
                time.sleep(0.05)
        return reports

    def drain_deployments(self, deadline_s: float = 60.0) -> list[SendReport]:
        """Run the deployment sender, with the sensor's style, until its outbox is empty; its reports."""
        deadline = time.monotonic() + deadline_s
        style = resources_for(self.settings)["github"].style()  # type: ignore[attr-defined]
        reports: list[SendReport] = []
        while self.deployments.unsent(1):
            assert time.monotonic() < deadline, f"not drained: {len(self.deployments.unsent(10_000))} unsent"
            reports.append(send_deployments(self.deployments, self.app(), style, utcnow))
            time.sleep(0.05)
        return reports

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the API with its bearer token."""
        with TestClient(create_app(self.settings)) as client:
            return client.request(method, path, headers={"Authorization": "Bearer token-for-github-tests"}, **kwargs)

    @staticmethod
    def head(linked: Linked) -> str:
        return git(linked.git.work, "rev-parse", "HEAD")


@pytest.fixture
def github_database() -> str | None:
    """The build store of the GitHub tests: SQLite under the test's home unless a test asks for Postgres."""
    return None


@pytest.fixture
def github_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github_database: str | None) -> Iterator[GitHubWorld]:
    """Emulator + settings (the App key through the environment, as in production) + the API receiving its webhooks."""
    secret = "emulated-webhook-secret"
    with GitHubEmulator(webhook_secret=secret) as emulator:
        monkeypatch.setenv("STARFORGE_GITHUB_APP_PRIVATE_KEY", emulator.private_key)
        settings = Settings(
            home=tmp_path / "home",
            database_url=github_database,
            build_backend="fake",
            github_webhook_secret=secret,
            api_token="token-for-github-tests",
            github_app_id=emulator.app_id,
            github_api_url=emulator.api_url,
            public_url="https://starforge.example.invalid",
            git_allowed_schemes="http",
            git_allowed_hosts=f"127.0.0.1:{emulator.port}",
        )
        root = tmp_path / "repos"
        root.mkdir()
        api = ServedApp(create_app(settings)).start()
        emulator.webhook_url = f"{api.url}/webhooks/github"
        world = GitHubWorld(emulator, settings, root)
        try:
            yield world
        finally:
            api.stop()
            world.store.engine.dispose()


@pytest.fixture
def settings(github_world: GitHubWorld) -> Settings:
    """The world's settings, so `build_store` and `pipeline` work against the emulator like its API does."""
    return github_world.settings
