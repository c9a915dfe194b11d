"""API test fixtures: a signed-webhook client over a fresh build store, on SQLite and on real Postgres."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from deliveries import WEBHOOK_SECRET, GitHub
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store
from starforge_dag.store.schema import metadata

API_TOKEN = "api-token-for-tests"
POSTGRES_ADMIN_URL = os.environ.get("STARFORGE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


# -- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"starforge_test_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    open_store(admin.url.set(database=name).render_as_string(hide_password=False)).engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
        git_allowed_schemes="file",
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


@pytest.fixture
def github(client: TestClient, signed_push: Callable[..., GitHub]) -> GitHub:
    return signed_push(client, WEBHOOK_SECRET)


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
