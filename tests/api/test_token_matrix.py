"""Every bearer endpoint of the OpenAPI document × {no token, wrong token, the other workspace's token, the own
workspace's token, the platform token}. The operations come from `create_app().openapi()`, so an endpoint added
without declaring (and enforcing) its access fails here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.previews import held_fork_pull
from support.registries import REGISTRY, push_manifest

from starforge_dag.api import create_app
from starforge_dag.api.deps import ACCESS_KEY, BODY, LISTING, PLATFORM, WORKSPACE
from starforge_dag.core import tokens
from starforge_dag.core.models import App
from starforge_dag.core.notifications import EVENTS
from starforge_dag.core.states import BuildState
from starforge_dag.notify import new_secret
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, NewValue

API_TOKEN = "api-token-for-tests"
METHODS = ("get", "post", "put", "patch", "delete")
ROLLBACK = ("post", "/apps/{app}/rollback")


def bearer_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation that declares bearer security; the rest (the GitHub webhook,
    health, public pages) authenticate otherwise or not at all."""
    spec = create_app().openapi()
    return [
        (method, path, operation)
        for path, item in sorted(spec["paths"].items())
        for method, operation in item.items()
        if method in METHODS and any("HTTPBearer" in s for s in operation.get("security", []))
    ]


OPERATIONS = bearer_operations()


@dataclass
class Workspace:
    name: str
    app: App
    token: str
    spare_token_id: int
    old_build_id: int
    queued_build_id: int
    endpoint_id: int


def _succeeded(build_store: BuildStore, app: App, n: int, real_image: bool) -> int:
    when = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n)
    build = build_store.enqueue(app, "main", f"{n:040x}", trigger="manual", actor="ada", commit_time=when).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        build_store.transition(build.id, state, state.value, "run:test")
    if real_image:  # a rollback asks the registry whether the image is still there
        repository = f"apps/{app.workspace}/{app.name}-{uuid.uuid4().hex[:8]}"
        digest = push_manifest(repository, f"{n:040x}")
        ref = f"{REGISTRY}/{repository}:{n:040x}"
    else:
        ref, digest = f"{REGISTRY}/apps/{app.workspace}/{app.name}:{n:040x}", f"sha256:{n:064x}"
    build_store.succeed(build.id, ref, digest, "pushed", "run:test")
    return build.id


def _workspace(build_store: BuildStore, settings: Settings, name: str, repo: Path, real_images: bool) -> Workspace:
    app = build_store.add_app(name, "web", f"file://{repo}", "main")
    old = _succeeded(build_store, app, 1, real_images)
    _succeeded(build_store, app, 2, real_images)
    queued = build_store.enqueue(app, "main", f"{3:040x}", trigger="manual", actor="ada").build
    build_store.set_variables(name, "web", [NewValue("GREETING", "hello", False)], "test", settings.secret_box())
    build_store.set_variables(name, None, [NewValue("GREETING", "hello", False)], "test", settings.secret_box())
    token = tokens.new_token()
    build_store.add_token(name, "ci", tokens.token_hash(token))
    spare = build_store.add_token(name, "spare", tokens.token_hash(tokens.new_token()))
    endpoint = build_store.add_endpoint(
        name, "http://127.0.0.1:9/hook", EVENTS, settings.secret_box().seal(new_secret())
    )
    build_store.record_pull_request(f"pr-{name}", [app], held_fork_pull(1, f"{7:040x}"))  # approvable
    return Workspace(name, app, token, spare.id, old, queued.id, endpoint.id)


def _path(path: str, ws: Workspace) -> str:
    values = {
        "workspace": ws.name,
        "app": "web" if "{workspace}" in path else f"{ws.name}/web",
        "build_id": str(ws.queued_build_id),
        "name": "GREETING",
        "token_id": str(ws.spare_token_id),
        "endpoint_id": str(ws.endpoint_id),
        "number": "1",
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    assert "{" not in path, f"{path}: no real id for this path parameter; add one to _path"
    return path


def _body(operation: dict[str, Any], ws: Workspace, repo: Path) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content["schema"]
    refs = [s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s]
    name = refs[0].rsplit("/", 1)[-1] if refs else ""
    bodies = {
        "AppCreate": {"workspace": ws.name, "name": "fresh", "repo_url": f"file://{repo}"},
        "AppPatch": {"branch": "main"},
        "VariableWrite": {"value": "hello again"},
        "ManualBuild": {"ref": "main"},
        "Rollback": {"build_id": ws.old_build_id},
        "Hold": {"note": "matrix"},
        "Approval": {"by": "matrix"},
        "TokenCreate": {"name": "deploy"},
        "EndpointCreate": {"url": "http://127.0.0.1:9/other", "events": ["build.failed"]},
    }
    if name not in bodies:
        pytest.fail(f"no example body for request schema {name!r}: add one to _body")
    return bodies[name]


def _param(method: str, path: str, operation: dict[str, Any]):
    marks = [pytest.mark.integration] if (method, path) == ROLLBACK else []
    return pytest.param(method, path, operation, id=f"{method.upper()} {path}", marks=marks)


@pytest.mark.parametrize(("method", "path", "operation"), [_param(*op) for op in OPERATIONS])
def test_every_endpoint_reaches_exactly_what_the_token_may(
    method: str, path: str, operation: dict[str, Any], settings: Settings, build_store: BuildStore, source_repo: Path
) -> None:
    access = operation.get(ACCESS_KEY)
    assert access in (WORKSPACE, LISTING, PLATFORM, BODY), f"{method} {path} declares no {ACCESS_KEY}"
    allowed = settings.model_copy(update={"webhook_allowed_cidrs": "127.0.0.0/8"})
    real_images = (method, path) == ROLLBACK
    alpha = _workspace(build_store, allowed, "alpha", source_repo, real_images)
    bravo = _workspace(build_store, allowed, "bravo", source_repo, real_images)
    if path.endswith("/unpin"):
        for ws in (alpha, bravo):
            build_store.pin(ws.app.id, "test")

    def call(token: str | None, ws: Workspace, target: Workspace | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        body = _body(operation, target or ws, source_repo)
        return api_client.request(method, _path(path, ws), json=body, headers=headers)

    with TestClient(create_app(allowed)) as api_client:
        for token in (None, "not-the-token", tokens.new_token()):
            answer = call(token, alpha)
            assert answer.status_code == 401, (token, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"

        other = call(bravo.token, alpha)
        own = call(alpha.token, alpha)
        platform = call(API_TOKEN, bravo)

    if access == WORKSPACE:
        assert other.status_code == 404, other.text
        assert own.is_success, own.text
    elif access == BODY:
        assert other.status_code == 403, other.text
        assert own.is_success, own.text
    elif access == PLATFORM:
        assert other.status_code == 403, other.text
        assert own.status_code == 403, own.text
    else:  # a listing: each workspace token sees its own entries, never another workspace's
        assert other.is_success and own.is_success, (other.text, own.text)
        assert "alpha" not in other.text and "bravo" in other.text
        assert "bravo" not in own.text and "alpha" in own.text
    assert platform.is_success, platform.text
    if access == LISTING:
        assert "alpha" in platform.text and "bravo" in platform.text


def test_the_matrix_covers_the_whole_api() -> None:
    """The enumeration reads the live document: a change that hid endpoints from it would show here."""
    covered = {(m, p) for m, p, _ in OPERATIONS}
    assert len(covered) >= 28
    assert {
        ("get", "/builds/{build_id}"),
        ("get", "/desired-state"),
        ("post", "/apps"),
        ("post", "/workspaces/{workspace}/tokens"),
        ("get", "/workspaces/{workspace}/webhooks/{endpoint_id}/deliveries"),
        ROLLBACK,
    } <= covered
    assert ("post", "/webhooks/github") not in covered and ("get", "/healthz") not in covered
