"""Fixtures every test package may use: real git repositories made on the spot."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from gitrepos import GitRepo


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    root = tmp_path / "repos"
    root.mkdir()
    return lambda name="app": GitRepo(root, name)


POSTGRES_ADMIN_URL = os.environ.get("STARFORGE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database():
    """Make throwaway Postgres databases on the real server; all are dropped at the end of the session."""
    import secrets

    import sqlalchemy as sa

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


@pytest.fixture
def github_emulator():
    """A running GitHub emulator (App, installations, statuses, deliveries, private git remote); stopped after."""
    from starforge_dag.emulators.github import GitHubEmulator

    with GitHubEmulator(webhook_secret="emulated-webhook-secret") as emulator:
        yield emulator
