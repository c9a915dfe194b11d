"""API test fixtures: a signed-webhook client over a fresh build store, on SQLite and on real Postgres."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.github.signature import sign
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store
from starforge_dag.store.schema import metadata

WEBHOOK_SECRET = "webhook-secret-for-tests"
API_TOKEN = "api-token-for-tests"
ZERO = "0" * 40


# -- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url(postgres_database) -> str:
    """A database of its own for this test session (emptied per test by `database_url`)."""
    return postgres_database("starforge_api")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty build store: a SQLite file per test, or the session's Postgres database emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'starforge.db'}"
        yield url
        open_store(url).engine.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    engine = open_store(url).engine
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        github_webhook_secret=WEBHOOK_SECRET,
        api_token=API_TOKEN,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def store(settings: Settings) -> BuildStore:
    return open_store(settings.resolved_database_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Authorized for the token-protected endpoints; webhook calls are signed per request."""
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_TOKEN}"}) as test_client:
        yield test_client


# -- GitHub deliveries -------------------------------------------------------------------------


class GitHub:
    """Builds push payloads shaped like github.com's and posts them signed like GitHub signs them."""

    def __init__(self, client: TestClient):
        self.client = client

    @staticmethod
    def sha(seed: str) -> str:
        return hashlib.sha1(seed.encode()).hexdigest()

    def commit(self, message: str = "Update app", *, added=(), modified=("app.py",), removed=()) -> dict[str, Any]:
        """One entry of a push payload's `commits`."""
        cid = self.sha(message + repr((added, modified, removed)))
        return {
            "id": cid,
            "tree_id": self.sha("tree" + cid),
            "distinct": True,
            "message": message,
            "timestamp": "2026-11-27T09:15:02+01:00",
            "url": f"https://github.com/acme/shop/commit/{cid}",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": list(added),
            "removed": list(removed),
            "modified": list(modified),
        }

    def push(
        self,
        *commits: dict[str, Any],
        full_name: str = "acme/shop",
        ref: str = "refs/heads/main",
        deleted: bool = False,
    ) -> dict[str, Any]:
        """A push delivery body; `after` is the last commit, as GitHub sends it."""
        listed = [] if deleted else (list(commits) or [self.commit()])
        head = listed[-1] if listed else None
        after = head["id"] if head else ZERO
        owner, _, name = full_name.partition("/")
        return {
            "ref": ref,
            "before": self.sha("before" + after),
            "after": after,
            "repository": {
                "id": 123456789,
                "node_id": "R_kgDOabc",
                "name": name,
                "full_name": full_name,
                "private": True,
                "owner": {"name": owner, "login": owner, "id": 42, "type": "Organization"},
                "html_url": f"https://github.com/{full_name}",
                "clone_url": f"https://github.com/{full_name}.git",
                "ssh_url": f"git@github.com:{full_name}.git",
                "git_url": f"git://github.com/{full_name}.git",
                "default_branch": "main",
            },
            "pusher": {"name": "ada", "email": "ada@example.com"},
            "sender": {"login": "ada", "id": 7, "type": "User"},
            "created": False,
            "deleted": deleted,
            "forced": False,
            "base_ref": None,
            "compare": f"https://github.com/{full_name}/compare/{self.sha('b')[:12]}...{after[:12]}",
            "commits": listed,
            "head_commit": head,
        }

    def deliver(
        self,
        payload: Any = None,
        *,
        event: str = "push",
        delivery: str | None = None,
        secret: str = WEBHOOK_SECRET,
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST a delivery signed over its raw body with HMAC-SHA256."""
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret.encode(), raw),
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/044aadd",
        }
        return self.client.post("/webhooks/github", content=raw, headers=headers)


@pytest.fixture
def github(client: TestClient) -> GitHub:
    return GitHub(client)


# -- git ---------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A real repository with `main` and `feature` branches, served over file://."""
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "First")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "app.py").write_text("print('feature')\n")
    git(repo, "commit", "-q", "-am", "Feature")
    git(repo, "checkout", "-q", "main")
    return repo
