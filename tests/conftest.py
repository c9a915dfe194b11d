"""Fixtures every test package may use: real git repositories, signed GitHub deliveries, Postgres databases,
dockerd, the registry, the emulators, a Dagster instance and the build pipeline in process."""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support.deliveries import WEBHOOK_SECRET, GitHub
from support.gitrepos import GitRepo

from starforge_dag.api import create_app
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store
from starforge_dag.store.db import close_idle_connections
from starforge_dag.store.schema import metadata

API_TOKEN = "api-token-for-tests"

if TYPE_CHECKING:
    import dagster as dg
    from support.pipeline import Pipeline

    from starforge_dag.emulators.depot import DepotEmulator


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    root = tmp_path / "repos"
    root.mkdir()
    return lambda name="app": GitRepo(root, name)


@pytest.fixture
def signed_push() -> Callable[..., GitHub]:
    """The one way tests post GitHub deliveries: `signed_push(client, secret=...)` for any httpx client."""

    def make(client: httpx.Client, secret: str = WEBHOOK_SECRET) -> GitHub:
        return GitHub(client, secret)

    return make


POSTGRES_ADMIN_URL = os.environ.get("STARFORGE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database():
    """Make throwaway Postgres databases on the real server; all are dropped at the end of the session."""
    import secrets

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(prefix: str = "starforge") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    yield make
    from starforge_dag.store.db import dispose_all

    dispose_all()
    with admin.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _close_idle_database_connections() -> Iterator[None]:
    """Each test's scratch database gets its own engine; closing their pools after the test keeps one run's
    Postgres connections to what the current test holds, far below max_connections."""
    yield
    close_idle_connections()


@pytest.fixture
def git_http(tmp_path: Path):
    """Serve bare repositories under tmp_path/repos over git's smart HTTP protocol (git http-backend)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    root = tmp_path / "repos"
    root.mkdir(exist_ok=True)

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi_env = {
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ["PATH_INFO"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if ": " in line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "scripts" / "services.sh"


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """Start (or find running) dockerd and the registry; a failure fails the tests, never skips them."""
    up = subprocess.run(["bash", str(SERVICES), "up"], capture_output=True, text=True, timeout=1200, check=False)
    if up.returncode != 0:
        pytest.fail(f"scripts/services.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}", pytrace=False)
    env = subprocess.run(["bash", str(SERVICES), "env"], capture_output=True, text=True, check=True).stdout
    words = shlex.split(env.strip())
    assert words[0] == "export"
    return dict(word.split("=", 1) for word in words[1:])


@pytest.fixture(scope="session")
def buildkit_addr(services: dict[str, str]) -> str:
    return services["STARFORGE_BUILDKIT_ADDR"]


@pytest.fixture(scope="session")
def docker_sock(buildkit_addr: str) -> str:
    return buildkit_addr.removeprefix("docker://")


@pytest.fixture(scope="session")
def base_image(services: dict[str, str]) -> str:
    return services["STARFORGE_BASE_IMAGE"]


@pytest.fixture
def image_name(services: dict[str, str]) -> str:
    """A fresh name:tag under the test registry, so tests never see each other's images."""
    return f"{services['STARFORGE_REGISTRY']}/test-{uuid.uuid4().hex[:10]}:v1"


@pytest.fixture
def depot_emulator(buildkit_addr: str) -> Iterator[DepotEmulator]:
    """A fresh Depot emulator fronting the local dockerd; tests script its faults and read its records."""
    from starforge_dag.emulators.depot import DepotEmulator

    with DepotEmulator(docker_addr=buildkit_addr) as emulator:
        yield emulator


@pytest.fixture
def github_emulator():
    """A running GitHub emulator (App, installations, statuses, deliveries, private git remote); stopped after."""
    from starforge_dag.emulators.github import GitHubEmulator

    with GitHubEmulator(webhook_secret="emulated-webhook-secret") as emulator:
        yield emulator


# -- the API over a fresh build store -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[str], str]) -> str:
    """A database of its own for this test session (dropped with the others at the end)."""
    return postgres_database("starforge_test")


@pytest.fixture(scope="session")
def dagster_postgres_url(postgres_database: Callable[[str], str]) -> str:
    """Dagster's own storage, never the build store's database: each keeps its own migrations there."""
    return postgres_database("starforge_dagster")


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
def build_store(settings: Settings) -> BuildStore:
    """The build store of this test's settings (each folder's `settings` decides which database)."""
    return open_store(settings.resolved_database_url)


@pytest.fixture
def api_client(settings: Settings) -> Iterator[TestClient]:
    """Authorized for the token-protected endpoints; webhook calls are signed per request."""
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
        yield client


# -- GitHub deliveries ---------------------------------------------------------------------------------------------


@pytest.fixture
def github_webhooks(api_client: TestClient, signed_push: Callable[..., GitHub]) -> GitHub:
    """GitHub's side of the webhook: payloads built and delivered, signed, to the API under test."""
    return signed_push(api_client, WEBHOOK_SECRET)


# -- Dagster ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """An ephemeral Dagster instance of this test only: runs, events and partitions start empty."""
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def pipeline(settings: Settings, dagster_instance: dg.DagsterInstance) -> Pipeline:
    """The build job end to end in process, on this test's settings (each folder's `settings`) and instance."""
    from support.pipeline import Pipeline

    return Pipeline(settings, dagster_instance)
