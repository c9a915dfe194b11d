"""App management and variables over HTTP: every endpoint, every refusal, and no answer holding a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore

SECRET = "npm_tok-4c1d2b3a9f8e"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


class Recording:
    """The API client, keeping every answer so a test can scan them all for a secret."""

    def __init__(self, client: TestClient):
        self.client = client
        self.bodies: list[str] = []

    def __getattr__(self, method: str):
        def call(*args, **kwargs):
            response = getattr(self.client, method)(*args, **kwargs)
            self.bodies.append(response.text + json.dumps(dict(response.headers)))
            return response

        return call


@pytest.fixture
def api(api_client: TestClient) -> Recording:
    return Recording(api_client)


@pytest.fixture
def shop(api: Recording, source_repo: Path) -> dict:
    response = api.post("/apps", json={"workspace": "acme", "name": "shop", "repo_url": f"file://{source_repo}"})
    assert response.status_code == 201, response.text
    return response.json()


def test_register_show_change_and_list_an_app(api: Recording, source_repo: Path) -> None:
    created = api.post(
        "/apps",
        json={
            "workspace": "acme",
            "name": "shop",
            "repo_url": f"file://{source_repo}",
            "branch": "feature",
            "root_dir": "web/",
            "dockerfile_path": "docker/Dockerfile",
            "watch_paths": ["web/**", "!web/docs/**"],
            "target": "runtime",
            "build_timeout_s": 900,
            "cancel_running": True,
            "auto_build": False,
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["branch"], body["root_dir"], body["target"]) == (
        "acme/shop",
        "feature",
        "web",
        "runtime",
    )
    assert (body["build_timeout_s"], body["cancel_running"], body["auto_build"]) == (900, True, False)
    assert api.get("/apps/acme/shop").json() == body
    changed = api.patch("/apps/acme/shop", json={"target": None, "build_timeout_s": 60, "auto_build": True})
    assert changed.status_code == 200
    assert (changed.json()["target"], changed.json()["build_timeout_s"], changed.json()["auto_build"]) == (
        None,
        60,
        True,
    )
    assert changed.json()["dockerfile_path"] == "docker/Dockerfile"
    assert [a["name"] for a in api.get("/apps").json()] == ["acme/shop"]
    again = api.post("/apps", json={"workspace": "acme", "name": "shop", "repo_url": f"file://{source_repo}"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"repo_url": "https://github.com/acme/shop.git"}, "repo_url"),  # https is not allowed in these tests
        ({"repo_url": "ext::sh -c touch% /tmp/pwned"}, "repo_url"),
        ({"branch": "bad..branch"}, "branch"),
        ({"root_dir": "../outside"}, "root_dir"),
        ({"root_dir": "/etc"}, "root_dir"),
        ({"dockerfile_path": "a/../../Dockerfile"}, "dockerfile_path"),
        ({"watch_paths": ["src/**", "../x"]}, "watch_paths"),
        ({"target": "stage one"}, "target"),
        ({"build_timeout_s": 0}, "build_timeout_s"),
        ({"build_timeout_s": 10**9}, "build_timeout_s"),
        ({"branch": None}, "branch"),
        ({"root_dir": "a\x00b"}, "root_dir"),
    ],
)
def test_every_bad_setting_is_refused_naming_the_field_and_nothing_changes(
    api: Recording, shop: dict, source_repo: Path, build_store: BuildStore, body: dict, field: str
) -> None:
    before = build_store.get_app("shop", "acme")
    changed = api.patch("/apps/acme/shop", json=body)
    assert changed.status_code == 422 and changed.json()["detail"].startswith(field)
    created = api.post(
        "/apps", json={"workspace": "acme", "name": "other", "repo_url": f"file://{source_repo}", **body}
    )
    assert created.status_code == 422 and created.json()["detail"].startswith(field)
    assert build_store.get_app("shop", "acme") == before
    assert [a.name for a in build_store.list_apps()] == ["shop"]


@pytest.mark.parametrize(
    "body",
    [
        {"workspace": "acme", "name": "a/b", "repo_url": "file:///x"},
        {"workspace": "ac me", "name": "ok", "repo_url": "file:///x"},
        {"workspace": "acme", "name": "ok"},
        {"workspace": "acme", "name": "ok", "repo_url": "file:///x", "github_repo": "acme/x"},
        {"workspace": "acme", "name": "ok", "github_repo": "not a repo"},
        {"workspace": "acme", "name": "ok", "github_repo": "acme/x"},  # no GitHub App configured
        {"workspace": "acme", "name": "ok", "repo_url": "file:///x", "unknown": 1},
    ],
)
def test_bad_registrations_are_refused(api: Recording, build_store: BuildStore, body: dict) -> None:
    response = api.post("/apps", json=body)
    assert response.status_code == 422
    assert build_store.list_apps() == []


def test_an_unknown_app_is_404(api: Recording) -> None:
    for method, path in [("get", "/apps/acme/none"), ("patch", "/apps/acme/none"), ("delete", "/apps/acme/none")]:
        response = getattr(api, method)(path, **({"json": {}} if method == "patch" else {}))
        assert response.status_code == 404
    assert api.get("/apps/acme/none/variables").status_code == 404
    assert api.get("/workspaces/nowhere/variables").status_code == 404


def test_removing_an_app_stops_its_builds_and_keeps_its_history(
    api: Recording, shop: dict, build_store: BuildStore, github_webhooks, source_repo: Path
) -> None:
    queued = api.post("/apps/acme/shop/builds").json()["build"]
    removed = api.delete("/apps/acme/shop")
    assert removed.status_code == 200
    assert removed.json()["stopped"] == [queued["id"]] and removed.json()["app"]["archived_at"]
    assert build_store.get_build(queued["id"]).status == BuildState.CANCELED
    assert api.get(f"/builds/{queued['id']}").status_code == 200
    assert api.get("/apps/acme/shop").json()["archived_at"] == removed.json()["app"]["archived_at"]
    build = api.post("/apps/acme/shop/builds")
    assert build.status_code == 409 and "removed" in build.json()["detail"]
    push = github_webhooks.deliver(github_webhooks.push(full_name="acme/shop", repo_url=f"file://{source_repo}"))
    assert push.status_code == 404 and "removed" in push.json()["detail"]
    assert api.patch("/apps/acme/shop", json={"branch": "dev"}).status_code == 409
    assert api.put("/apps/acme/shop/variables/A_B", json={"value": "1"}).status_code == 409
    assert len(build_store.list_builds()) == 1
    assert api.delete("/apps/acme/shop").json()["stopped"] == []


def test_without_auto_build_a_push_is_recorded_not_built(
    api: Recording, shop: dict, build_store: BuildStore, github_webhooks, source_repo: Path
) -> None:
    api.patch("/apps/acme/shop", json={"auto_build": False})
    push = github_webhooks.deliver(github_webhooks.push(full_name="acme/shop", repo_url=f"file://{source_repo}"))
    assert push.status_code == 200 and push.json()["status"] == "ignored"
    assert "auto_build is off" in push.json()["reason"]
    assert build_store.list_builds() == []
    api.patch("/apps/acme/shop", json={"auto_build": True})
    built = github_webhooks.deliver(
        github_webhooks.push(
            github_webhooks.commit(sha=github_webhooks.sha("next")),
            full_name="acme/shop",
            repo_url=f"file://{source_repo}",
        )
    )
    assert built.status_code == 202


def test_variables_of_an_app_and_its_workspace(api: Recording, shop: dict, build_store: BuildStore) -> None:
    put = api.put("/apps/acme/shop/variables/GREETING", json={"value": "hello", "by": "ada"})
    assert put.status_code == 200
    variable = put.json()["variable"]
    assert (variable["value"], variable["version"], variable["actor"], variable["scope"]) == (
        "hello",
        1,
        "api:ada",
        "app",
    )
    secret = api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"value": SECRET, "secret": True}).json()["variable"]
    assert secret["secret"] and secret["value"] is None and len(secret["fingerprint"]) == 64
    changed = api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"value": SECRET + "2", "secret": True})
    assert changed.json()["variable"]["fingerprint"] != secret["fingerprint"]
    assert changed.json()["variable"]["version"] == 2
    ws = api.put("/workspaces/acme/variables/REGION", json={"value": "eu"})
    assert ws.status_code == 200 and ws.json()["variable"]["scope"] == "workspace"
    listed = api.get("/apps/acme/shop/variables").json()
    assert [(v["name"], v["value"]) for v in listed] == [("GREETING", "hello"), ("NPM_TOKEN", None)]
    assert [v["name"] for v in api.get("/workspaces/acme/variables").json()] == ["REGION"]
    gone = api.delete("/apps/acme/shop/variables/GREETING", params={"by": "bob"})
    assert gone.status_code == 200 and gone.json()["deleted"] and gone.json()["actor"] == "api:bob"
    assert api.delete("/apps/acme/shop/variables/GREETING").status_code == 404
    assert api.delete("/workspaces/acme/variables/REGION").status_code == 200
    assert [v["name"] for v in api.get("/apps/acme/shop/variables").json()] == ["NPM_TOKEN"]
    assert all(SECRET not in body for body in api.bodies)


def test_a_secret_is_never_in_any_answer_and_the_scan_can_find_one(
    api: Recording, shop: dict, build_store: BuildStore
) -> None:
    api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"value": SECRET, "secret": True})
    api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"valu": SECRET, "secret": True})  # malformed: 422
    api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"value": SECRET, "secret": "maybe"})
    api.put("/apps/acme/shop/variables/bad-name", json={"value": SECRET, "secret": True})
    api.put("/apps/acme/shop/variables/NPM_TOKEN", json={"value": SECRET + "\x00", "secret": True})
    api.get("/apps/acme/shop/variables")
    api.get("/apps/acme/shop")
    api.get("/apps")
    api.get("/openapi.json")
    assert [b for b in api.bodies if SECRET in b] == []
    api.put("/apps/acme/shop/variables/PLAIN", json={"value": SECRET})
    assert any(SECRET in body for body in api.bodies)  # a plain value is shown: the scan does find values


@pytest.mark.parametrize(
    ("name", "value", "code", "rule"),
    [
        ("9LIVES", "x", 422, "does not match"),
        ("A" * 257, "x", 422, "longer than 256"),
        ("STARFORGE_API_TOKEN", "x", 422, "reserved"),
        ("DAGSTER_HOME", "x", 422, "reserved"),
        ("OK", "a\x00b", 422, "NUL"),
        ("OK", "x" * (64 * 1024 + 1), 422, "64 KiB"),
    ],
)
def test_every_variable_rule_answers_4xx_naming_it_and_writes_nothing(
    api: Recording, shop: dict, build_store: BuildStore, name: str, value: str, code: int, rule: str
) -> None:
    for path in (f"/apps/acme/shop/variables/{name}", f"/workspaces/acme/variables/{name}"):
        response = api.put(path, json={"value": value, "secret": True})
        assert response.status_code == code and rule in response.json()["detail"]
    assert build_store.variable_history("acme", "shop") == [] and build_store.variable_history("acme") == []


def test_the_501st_variable_is_refused(api: Recording, shop: dict, build_store: BuildStore, settings) -> None:
    from starforge_dag.store import NewValue

    build_store.set_variables(
        "acme", "shop", [NewValue(f"V{i}", "1") for i in range(500)], "test", settings.secret_box()
    )
    response = api.put("/apps/acme/shop/variables/ONE_MORE", json={"value": "1"})
    assert response.status_code == 409 and "at most 500" in response.json()["detail"]
    assert api.put("/apps/acme/shop/variables/V1", json={"value": "2"}).status_code == 200


def test_rebuild_queues_a_build_of_the_current_commit_with_the_new_version(
    api: Recording, shop: dict, build_store: BuildStore, settings
) -> None:
    assert api.put("/apps/acme/shop/variables/A_B", json={"value": "1", "rebuild": True}).json()["builds"] == []
    first = api.post("/apps/acme/shop/builds").json()["build"]
    build_store.finish(first["id"], "failed", "boom", "test")
    again = api.put("/apps/acme/shop/variables/A_B", json={"value": "2", "rebuild": True}).json()["builds"]
    assert len(again) == 1 and again[0]["created"] and again[0]["build"]["commit_sha"] == first["commit_sha"]
    values = build_store.build_variables(again[0]["build"]["id"], settings.secret_box())
    assert [(v.name, v.value.get_secret_value()) for v in values] == [("A_B", "2")]
    ws = api.put("/workspaces/acme/variables/C_D", json={"value": "3", "rebuild": True}).json()["builds"]
    assert [b["build"]["id"] for b in ws] == [again[0]["build"]["id"]] and not ws[0]["created"]


def test_the_openapi_document_describes_every_new_endpoint(api: Recording) -> None:
    spec = api.get("/openapi.json").json()
    expected = {
        "/apps": {"post", "get"},
        "/apps/{workspace}/{app}": {"get", "patch", "delete"},
        "/apps/{workspace}/{app}/variables": {"get"},
        "/apps/{workspace}/{app}/variables/{name}": {"put", "delete"},
        "/workspaces/{workspace}/variables": {"get"},
        "/workspaces/{workspace}/variables/{name}": {"put", "delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(spec["paths"][path]), path
    put = spec["paths"]["/apps/{workspace}/{app}/variables/{name}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/VariableWrite"}
    assert {"409", "422"} <= set(put["responses"])
    assert "value" in spec["components"]["schemas"]["VariableView"]["properties"]
    assert spec["paths"]["/apps"]["post"]["responses"]["201"]
