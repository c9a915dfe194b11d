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


def _token(client: TestClient, workspace: str, name: str = "ci") -> dict:
    made = client.post(f"/workspaces/{workspace}/tokens", json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()


def _as(client: TestClient, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_kept_hashed_and_revoked_at_once(client: TestClient, store: BuildStore) -> None:
    store.add_app("alpha", "web", "https://github.com/alpha/web.git")
    made = _token(client, "alpha")
    token = made["token"]
    assert token.startswith("sfw_") and len(token) >= 44
    with store.engine.connect() as conn:
        (stored,) = conn.execute(sa.select(workspace_tokens.c.token_hash)).scalars()
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    assert [a["name"] for a in client.get("/apps", headers=_as(client, token)).json()] == ["alpha/web"]
    (listed,) = client.get("/workspaces/alpha/tokens").json()
    assert "token" not in listed and listed["name"] == "ci" and listed["last_used_at"] is not None
    assert listed["revoked_at"] is None

    revoked = client.delete(f"/workspaces/alpha/tokens/{made['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/apps", headers=_as(client, token))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.delete(f"/workspaces/bravo/tokens/{made['id']}").status_code == 404


def test_last_use_is_written_at_most_once_a_minute(client: TestClient, store: BuildStore) -> None:
    made = _token(client, "alpha")
    assert client.get("/builds", headers=_as(client, made["token"])).status_code == 200
    first = client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"]
    assert client.get("/builds", headers=_as(client, made["token"])).status_code == 200
    assert client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"] == first
    with store.engine.begin() as conn:
        conn.execute(workspace_tokens.update().values(last_used_at=utcnow() - timedelta(minutes=2)))
    client.get("/builds", headers=_as(client, made["token"]))
    assert client.get("/workspaces/alpha/tokens").json()[0]["last_used_at"] > first


def test_a_workspace_token_cannot_make_tokens_even_for_its_own_workspace(client: TestClient) -> None:
    own = _token(client, "alpha")["token"]
    answer = client.post("/workspaces/alpha/tokens", json={"name": "more"}, headers=_as(client, own))
    assert answer.status_code == 403 and "platform token" in answer.json()["detail"]


def _moved(store: BuildStore, app: App, n: int) -> None:
    build = store.enqueue(app, "main", f"{n:040x}", trigger="manual", actor="ada").build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build.id, state, state.value, "run:test")
    store.succeed(build.id, f"127.0.0.1:5000/apps/{app.workspace}/web:{n}", f"sha256:{n:064x}", "ok", "run:test")


def test_a_workspace_token_reads_its_own_workspace_s_feed_only(client: TestClient, store: BuildStore) -> None:
    alpha = store.add_app("alpha", "web", "https://github.com/alpha/web.git")
    bravo = store.add_app("bravo", "web", "https://github.com/bravo/web.git")
    _moved(store, alpha, 1)
    _moved(store, bravo, 2)
    _moved(store, alpha, 3)
    own = _as(client, _token(client, "alpha")["token"])

    current = client.get("/desired-state", headers=own).json()
    assert current["revision"] == 3 and [a["app"] for a in current["apps"]] == ["alpha/web"]
    feed = client.get("/desired-state", params={"after": 0}, headers=own).json()
    assert [(c["revision"], c["app"]) for c in feed["changes"]] == [(1, "alpha/web"), (3, "alpha/web")]
    assert feed["revision"] == 3
    refused = client.get("/desired-state", params={"after": 0, "workspace": "bravo"}, headers=own)
    assert refused.status_code == 403
    assert client.get("/desired-state", params={"after": 0, "workspace": "alpha"}, headers=own).status_code == 200
    others = client.get("/desired-state", params={"after": 0, "workspace": "bravo"}).json()
    assert [c["app"] for c in others["changes"]] == ["bravo/web"]

    _moved(store, bravo, 4)  # another workspace's change does not wake alpha's long poll early, nor show
    started = time.monotonic()
    waited = client.get("/desired-state", params={"after": 3, "wait": 0.5}, headers=own).json()
    assert waited == {"after": 3, "revision": 3, "changes": []} and time.monotonic() - started >= 0.5
