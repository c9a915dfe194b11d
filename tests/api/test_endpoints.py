"""Token-protected endpoints: builds, phases, logs (list and follow), manual builds, cancel, apps, desired state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from starforge_dag.api import create_app
from starforge_dag.core.models import App, LogLine
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PROTECTED = [
    ("GET", "/apps"),
    ("GET", "/builds"),
    ("GET", "/builds/1"),
    ("GET", "/builds/1/logs"),
    ("POST", "/builds/1/cancel"),
    ("POST", "/apps/acme/shop/builds"),
    ("GET", "/apps/acme/shop/desired-state"),
]


@pytest.fixture
def shop(build_store: BuildStore, source_repo: Path) -> App:
    return build_store.add_app("acme", "shop", f"file://{source_repo}", "main", repo_full_name="acme/shop")


def head(repo: Path, branch: str) -> str:
    done = subprocess.run(["git", "rev-parse", branch], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def advance(store: BuildStore, build_id: int, *states: BuildState, **final) -> None:
    for state in states[:-1]:
        store.transition(build_id, state, f"now {state.value}", "test")
    store.transition(build_id, states[-1], f"now {states[-1].value}", "test", **final)


# -- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_endpoints_need_the_bearer_token(settings: Settings, shop: App, method: str, path: str) -> None:
    with TestClient(create_app(settings)) as anonymous:
        missing = anonymous.request(method, path)
        wrong = anonymous.request(method, path, headers={"Authorization": "Bearer not-the-token"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_a_configured_token_the_api_refuses_rather_than_runs_open(
    settings: Settings, method: str, path: str
) -> None:
    unset = settings.model_copy(update={"api_token": SecretStr("")})
    with TestClient(create_app(unset)) as anyone:
        response = anyone.request(method, path, headers={"Authorization": "Bearer "})
    assert response.status_code == 503
    assert "set STARFORGE_API_TOKEN" in response.json()["detail"]


def test_settings_are_read_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, shop: App
) -> None:
    app = create_app()  # before the environment is set: nothing may be read at creation
    monkeypatch.setenv("STARFORGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("STARFORGE_API_TOKEN", "token-from-env")
    with TestClient(app) as env_client:
        apps = env_client.get("/apps", headers={"Authorization": "Bearer token-from-env"})
    assert apps.json()[0]["name"] == "acme/shop"


def test_healthz_and_openapi_are_open(settings: Settings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        health = anonymous.get("/healthz")
        schema = anonymous.get("/openapi.json")
        docs = anonymous.get("/docs")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}
    assert schema.status_code == 200 and docs.status_code == 200
    spec = schema.json()
    paths = {"/webhooks/github", "/builds/{build_id}", "/builds/{build_id}/logs", "/apps/{app}/builds", "/healthz"}
    assert paths <= set(spec["paths"])
    assert {t["name"] for t in spec["tags"]} == {"webhooks", "builds", "apps", "health"}
    assert spec["paths"]["/builds/{build_id}"]["get"]["tags"] == ["builds"]
    ok = spec["paths"]["/builds/{build_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/BuildDetail"}
    assert "phases" in spec["components"]["schemas"]["BuildDetail"]["properties"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_healthz_reports_an_unreachable_database(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql+psycopg2://postgres@127.0.0.1:1/none"})
    with TestClient(create_app(down)) as anonymous:
        response = anonymous.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


# -- manual builds -----------------------------------------------------------------------------


def test_manual_build_defaults_to_the_app_branch_head(api_client: TestClient, shop: App, source_repo: Path) -> None:
    response = api_client.post("/apps/acme/shop/builds")
    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True
    assert body["build"]["ref"] == "main" and body["build"]["commit_sha"] == head(source_repo, "main")
    assert body["build"]["status"] == "queued" and body["build"]["trigger"] == "manual"


def test_manual_build_of_a_branch_or_a_sha(api_client: TestClient, shop: App, source_repo: Path) -> None:
    feature = api_client.post("/apps/shop/builds", json={"ref": "feature"})
    assert feature.status_code == 202
    assert feature.json()["build"]["commit_sha"] == head(source_repo, "feature")
    exact = api_client.post("/apps/shop/builds", json={"ref": SHA})
    assert exact.status_code == 202
    assert exact.json()["build"]["ref"] == SHA and exact.json()["build"]["commit_sha"] == SHA
    uppercase = api_client.post("/apps/shop/builds", json={"ref": SHA.upper()})  # not a commit id: a branch, not found
    assert uppercase.status_code == 404 and "not found" in uppercase.json()["detail"]


def test_manual_build_of_an_active_commit_joins_it(api_client: TestClient, build_store: BuildStore, shop: App) -> None:
    first = api_client.post("/apps/acme/shop/builds", json={"ref": "main"}).json()
    again = api_client.post("/apps/acme/shop/builds", json={"ref": "main"})
    assert again.status_code == 200
    assert again.json()["created"] is False and again.json()["build"]["id"] == first["build"]["id"]
    assert len(build_store.list_builds()) == 1


@pytest.mark.parametrize(
    ("path", "ref", "code", "detail"),
    [
        ("/apps/acme/shop/builds", "no-such-branch", 404, "branch 'no-such-branch' not found"),
        ("/apps/acme/shop/builds", "bad..ref", 400, "neither a branch name nor a full commit id"),
        ("/apps/acme/shop/builds", "-upload-pack=touch", 400, "neither a branch name"),
        ("/apps/acme/nope/builds", "main", 404, "no app named 'nope'"),
    ],
)
def test_manual_build_errors(
    api_client: TestClient, build_store: BuildStore, shop: App, path: str, ref: str, code: int, detail: str
) -> None:
    response = api_client.post(path, json={"ref": ref})
    assert response.status_code == code
    assert detail in response.json()["detail"]
    assert build_store.list_builds() == []


def test_manual_build_of_an_unreachable_repository_is_a_bad_gateway(
    api_client: TestClient, build_store: BuildStore, tmp_path: Path
) -> None:
    build_store.add_app("acme", "gone", f"file://{tmp_path / 'missing'}", "main")
    response = api_client.post("/apps/acme/gone/builds")
    assert response.status_code == 502 and "git ls-remote failed" in response.json()["detail"]


def test_app_name_without_workspace_must_be_unique(api_client: TestClient, build_store: BuildStore, shop: App) -> None:
    build_store.add_app("other", "shop", shop.repo_url, "main")
    response = api_client.get("/apps/shop/desired-state")
    assert response.status_code == 404 and "workspace/app" in response.json()["detail"]
    assert "no successful build" in api_client.get("/apps/other/shop/desired-state").json()["detail"]


# -- builds ------------------------------------------------------------------------------------


def test_build_detail_has_phases_error_and_failing_step(
    api_client: TestClient, build_store: BuildStore, shop: App
) -> None:
    build = build_store.enqueue(shop, "main", SHA).build
    advance(build_store, build.id, BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING)
    build_store.transition(build.id, BuildState.FAILED, "npm ci exited 1", "test", error_step="submit_build")
    body = api_client.get(f"/builds/{build.id}").json()
    assert body["status"] == "failed" and body["app"] == "acme/shop" and body["commit_sha"] == SHA
    assert body["error"] == "npm ci exited 1" and body["error_step"] == "submit_build"
    phases = body["phases"]
    assert [p["state"] for p in phases] == ["queued", "cloning", "planning", "building", "failed"]
    for earlier, later in zip(phases, phases[1:]):
        assert earlier["ended_at"] == later["started_at"] and earlier["duration_s"] >= 0
    assert phases[-1]["ended_at"] is None and phases[-1]["reason"] == "npm ci exited 1"


def test_succeeded_build_shows_its_image_and_becomes_desired_state(
    api_client: TestClient, build_store: BuildStore, shop: App
) -> None:
    assert api_client.get("/apps/acme/shop/desired-state").status_code == 404
    build = build_store.enqueue(shop, "main", SHA).build
    advance(build_store, build.id, BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING)
    digest = "sha256:" + "ab" * 32
    build_store.succeed(build.id, f"127.0.0.1:5000/apps/acme/shop:{SHA}", digest, "pushed", "test")
    detail = api_client.get(f"/builds/{build.id}").json()
    assert detail["image_ref"] == f"127.0.0.1:5000/apps/acme/shop:{SHA}" and detail["image_digest"] == digest
    desired = api_client.get("/apps/acme/shop/desired-state")
    assert desired.status_code == 200
    assert desired.json()["image_digest"] == digest and desired.json()["build_id"] == build.id


def test_unknown_build_is_404(api_client: TestClient) -> None:
    response = api_client.get("/builds/999")
    assert response.status_code == 404 and response.json() == {"detail": "no build with id 999"}


def test_listing_apps_and_builds(api_client: TestClient, build_store: BuildStore, shop: App) -> None:
    other = build_store.add_app("acme", "api", "https://x-access-token:ghs_s3cr3t@github.com/acme/api.git", "main")
    mine = [build_store.enqueue(shop, "main", c * 40).build.id for c in "ab"]
    build_store.enqueue(other, "main", "c" * 40)
    apps = api_client.get("/apps").json()
    assert [a["name"] for a in apps] == ["acme/shop", "acme/api"]
    assert apps[0]["repo_url"] == shop.repo_url
    assert apps[1]["repo_url"] == "https://***@github.com/acme/api.git"
    listed = api_client.get("/builds", params={"app": "acme/shop"}).json()
    assert [b["id"] for b in listed] == mine[::-1]
    assert len(api_client.get("/builds").json()) == 3
    superseded = api_client.get("/builds", params={"app": "acme/shop", "status": "superseded"}).json()
    assert [b["id"] for b in superseded] == [mine[0]]


def test_cancel_queued_running_and_ended_builds(api_client: TestClient, build_store: BuildStore, shop: App) -> None:
    queued = build_store.enqueue(shop, "main", "a" * 40).build
    response = api_client.post(f"/builds/{queued.id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "canceled"

    running = build_store.enqueue(shop, "feature", "b" * 40).build
    advance(build_store, running.id, BuildState.CLONING, BuildState.PLANNING)
    response = api_client.post(f"/builds/{running.id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "planning"
    assert api_client.get(f"/builds/{running.id}").json()["stop_requested"] == "canceled"
    assert api_client.get(f"/builds/{queued.id}").json()["stop_requested"] is None

    again = api_client.post(f"/builds/{queued.id}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


# -- logs --------------------------------------------------------------------------------------


def write_logs(settings: Settings, build_id: int, seqs: range) -> None:
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        logs.append([LogLine(build_id=build_id, seq=s, stream="stdout", text=f"line {s}") for s in seqs])


def test_logs_as_a_json_list_paged_by_seq(
    api_client: TestClient, settings: Settings, build_store: BuildStore, shop: App
) -> None:
    build = build_store.enqueue(shop, "main", SHA).build
    write_logs(settings, build.id, range(5))
    everything = api_client.get(f"/builds/{build.id}/logs").json()
    assert [line["text"] for line in everything] == [f"line {s}" for s in range(5)]
    page = api_client.get(f"/builds/{build.id}/logs", params={"after": 1, "limit": 2}).json()
    assert [line["seq"] for line in page] == [2, 3]
    assert api_client.get("/builds/999/logs").status_code == 404


def test_follow_streams_until_the_build_ends(
    api_client: TestClient, settings: Settings, build_store: BuildStore, shop: App
) -> None:
    build = build_store.enqueue(shop, "main", SHA).build
    write_logs(settings, build.id, range(3))
    received: dict[int, threading.Event] = {seq: threading.Event() for seq in range(8)}

    def run_build() -> None:
        # Each batch is written only after the follower streamed the one before: what it gets, it waited for.
        if received[2].wait(30):
            build_store.transition(build.id, BuildState.CLONING, "cloning", "test")
            write_logs(settings, build.id, range(3, 6))
        if received[5].wait(30):
            write_logs(settings, build.id, range(6, 8))
        build_store.transition(build.id, BuildState.FAILED, "gave up", "test")

    worker = threading.Thread(target=run_build)
    worker.start()
    seqs = []
    with api_client.stream("GET", f"/builds/{build.id}/logs", params={"follow": "true", "after": 0}) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for line in response.iter_lines():
            if line:
                seqs.append(json.loads(line)["seq"])
                received[seqs[-1]].set()
    worker.join()
    assert seqs == list(range(1, 8))


def test_follow_of_an_ended_build_returns_what_is_stored(
    api_client: TestClient, settings: Settings, build_store: BuildStore, shop: App
) -> None:
    build = build_store.enqueue(shop, "main", SHA).build
    build_store.request_cancel(build.id, "test", "not wanted")
    write_logs(settings, build.id, range(2))
    response = api_client.get(f"/builds/{build.id}/logs", params={"follow": "true"})
    assert [json.loads(line)["text"] for line in response.text.splitlines()] == ["line 0", "line 1"]


def test_serve_runs_the_api_under_uvicorn(tmp_path: Path) -> None:
    """The embedded default: only STARFORGE_HOME set, the store is SQLite under it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STARFORGE_")},
        "STARFORGE_HOME": str(tmp_path / "served"),
        "STARFORGE_API_TOKEN": "served-token",
    }
    code = f"from starforge_dag.api import serve; serve('127.0.0.1', {port})"
    server = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr
                time.sleep(0.1)
        apps = httpx.get(f"http://127.0.0.1:{port}/apps", headers={"Authorization": "Bearer served-token"})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert health.json() == {"status": "ok", "database": "ok"}
    assert apps.status_code == 200 and apps.json() == []
    assert (tmp_path / "served" / "starforge.db").exists()
