"""Workspace tokens: made by the platform and shown once, kept hashed, listed with their last use, revoked at once;
a workspace token reads its own workspace's desired state and feed."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from starforge_dag.core.models import App, utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore
from starforge_dag.store.schema import workspace_tokens


def _token(api_client: TestClient, workspace: str, name: str = "ci") -> dict:
    made = api_client.post(f"/workspaces/{workspace}/tokens", json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()


def _as(api_client: TestClient, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_kept_hashed_and_revoked_at_once(api_client: TestClient, build_store: BuildStore) -> None:
    build_store.add_app("alpha", "web", "https://github.com/alpha/web.git")
    made = _token(api_client, "alpha")
    token = made["token"]
    assert token.startswith("sfw_") and len(token) >= 44
    with build_store.engine.connect() as conn:
        (stored,) = conn.execute(sa.select(workspace_tokens.c.token_hash)).scalars()
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    assert [a["name"] for a in api_client.get("/apps", headers=_as(api_client, token)).json()] == ["alpha/web"]
    (listed,) = api_client.get("/workspaces/alpha/tokens").json()
    assert "token" not in listed and listed["name"] == "ci" and listed["last_used_at"] is not None
    assert listed["revoked_at"] is None

    revoked = api_client.delete(f"/workspaces/alpha/tokens/{made['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = api_client.get("/apps", headers=_as(api_client, token))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert api_client.delete(f"/workspaces/bravo/tokens/{made['id']}").status_code == 404


def test_last_use_is_written_at_most_once_a_minute(api_client: TestClient, build_store: BuildStore) -> None:
    made = _token(api_client, "alpha")
    assert api_client.get("/builds", headers=_as(api_client, made["token"])).status_code == 200
    first = api_client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"]
    assert api_client.get("/builds", headers=_as(api_client, made["token"])).status_code == 200
    assert api_client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"] == first
    with build_store.engine.begin() as conn:
        conn.execute(workspace_tokens.update().values(last_used_at=utcnow() - timedelta(minutes=2)))
    api_client.get("/builds", headers=_as(api_client, made["token"]))
    assert api_client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"] > first


def test_a_workspace_token_cannot_make_tokens_even_for_its_own_workspace(api_client: TestClient) -> None:
    own = _token(api_client, "alpha")["token"]
    answer = api_client.post("/workspaces/alpha/tokens", json={"name": "more"}, headers=_as(api_client, own))
    assert answer.status_code == 403 and "platform token" in answer.json()["detail"]


def _moved(build_store: BuildStore, app: App, n: int) -> None:
    build = build_store.enqueue(app, "main", f"{n:040x}", trigger="manual", actor="ada").build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        build_store.transition(build.id, state, state.value, "run:test")
    build_store.succeed(build.id, f"127.0.0.1:5000/apps/{app.workspace}/web:{n}", f"sha256:{n:064x}", "ok", "run:test")


def test_a_workspace_token_reads_its_own_workspace_s_feed_only(api_client: TestClient, build_store: BuildStore) -> None:
    alpha = build_store.add_app("alpha", "web", "https://github.com/alpha/web.git")
    bravo = build_store.add_app("bravo", "web", "https://github.com/bravo/web.git")
    _moved(build_store, alpha, 1)
    _moved(build_store, bravo, 2)
    _moved(build_store, alpha, 3)
    own = _as(api_client, _token(api_client, "alpha")["token"])

    current = api_client.get("/desired-state", headers=own).json()
    assert current["revision"] == 3 and [a["app"] for a in current["apps"]] == ["alpha/web"]
    feed = api_client.get("/desired-state", params={"after": 0}, headers=own).json()
    assert [(c["revision"], c["app"]) for c in feed["changes"]] == [(1, "alpha/web"), (3, "alpha/web")]
    assert feed["revision"] == 3
    refused = api_client.get("/desired-state", params={"after": 0, "workspace": "bravo"}, headers=own)
    assert refused.status_code == 403
    assert api_client.get("/desired-state", params={"after": 0, "workspace": "alpha"}, headers=own).status_code == 200
    others = api_client.get("/desired-state", params={"after": 0, "workspace": "bravo"}).json()
    assert [c["app"] for c in others["changes"]] == ["bravo/web"]

    _moved(build_store, bravo, 4)  # another workspace's change does not wake alpha's long poll early, nor show
    started = time.monotonic()
    waited = api_client.get("/desired-state", params={"after": 3, "wait": 0.5}, headers=own).json()
    assert waited == {"after": 3, "revision": 3, "changes": []} and time.monotonic() - started >= 0.5
