"""The emulator's deployments API as GitHub answers it: installation tokens, 404 for what the token cannot see,
422 for invalid bodies, filters, statuses, auto_inactive, and the scripted faults."""

from __future__ import annotations

import httpx
import pytest

from starforge_dag.github.app import GitHubApp, GitHubAppError


@pytest.fixture
def deploy_repo(github_emulator, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n"}, "first")
    inst = github_emulator.add_installation("acme")
    emu_repo = github_emulator.add_repo("acme", "web", repo.bare, installation_id=inst)
    app = GitHubApp(github_emulator.app_id, github_emulator.private_key, github_emulator.api_url)
    return app, inst, emu_repo, sha


def _body(sha: str, environment: str = "production", **extra) -> dict:
    return {"ref": sha, "environment": environment, "auto_merge": False, "required_contexts": [], **extra}


def _call(emulator, token: str | None, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.request(method, f"{emulator.api_url}{path}", headers=headers, timeout=10, **kwargs)


def test_deployments_are_created_listed_by_ref_and_environment_and_carry_their_statuses(github_emulator, deploy_repo):
    app, inst, emu_repo, sha = deploy_repo
    production = app.create_deployment(inst, "acme/web", _body(sha, payload={"starforge": {"revision": 1}}))
    preview = app.create_deployment(inst, "acme/web", _body(sha, "pr-3", transient_environment=True))
    by_branch = app.create_deployment(inst, "acme/web", _body("main", "pr-3"))

    listed = app.deployments(inst, "acme/web", ref=sha, environment="production")
    assert [d["id"] for d in listed] == [production]
    assert listed[0]["payload"] == {"starforge": {"revision": 1}} and listed[0]["production_environment"] is True
    assert [d["id"] for d in app.deployments(inst, "acme/web", ref=sha, environment="pr-3")] == [preview]
    assert [d["id"] for d in app.deployments(inst, "acme/web", ref="main", environment="pr-3")] == [by_branch]
    assert github_emulator.deployments[by_branch].sha == sha  # a branch ref resolves to its commit

    app.create_deployment_status(inst, "acme/web", preview, "in_progress", description="moving")
    app.create_deployment_status(
        inst, "acme/web", preview, "success", description="done", log_url="https://x.invalid/page/1"
    )
    assert app.deployment_states(inst, "acme/web", preview) == ["success", "in_progress"]  # newest first
    recorded = github_emulator.deployments_for(emu_repo.id, "pr-3")[0]
    assert recorded.statuses[-1].log_url == "https://x.invalid/page/1"


def test_success_inactivates_earlier_non_production_non_transient_deployments_only(github_emulator, deploy_repo):
    app, inst, emu_repo, sha = deploy_repo
    ids = {}
    for env in ("staging", "staging", "production", "production", "pr-1", "pr-1"):
        transient = env.startswith("pr-")
        deployment = app.create_deployment(inst, "acme/web", _body(sha, env, transient_environment=transient))
        app.create_deployment_status(inst, "acme/web", deployment, "success", description="")
        ids.setdefault(env, []).append(deployment)
    states = {d.id: d.state for d in github_emulator.deployments_for(emu_repo.id)}
    assert [states[i] for i in ids["staging"]] == ["inactive", "success"]
    assert [states[i] for i in ids["production"]] == ["success", "success"]  # left to the sender
    assert [states[i] for i in ids["pr-1"]] == ["success", "success"]


def test_what_the_token_cannot_see_is_404_and_no_token_is_401(github_emulator, deploy_repo, git_repo):
    app, inst, _emu_repo, sha = deploy_repo
    other_inst = github_emulator.add_installation("globex")
    other = git_repo("other")
    other.commit({"a": "1"}, "first")
    github_emulator.add_repo("globex", "other", other.bare, installation_id=other_inst)
    deployment = app.create_deployment(inst, "acme/web", _body(sha))
    token = app.installation_token(inst)

    assert _call(github_emulator, None, "GET", "/repos/acme/web/deployments").status_code == 401
    assert _call(github_emulator, "ghs_forged", "GET", "/repos/acme/web/deployments").status_code == 401
    for method, path in (
        ("GET", "/repos/acme/nope/deployments"),
        ("POST", "/repos/globex/other/deployments"),
        ("POST", "/repos/acme/web/deployments/999999/statuses"),
        ("GET", f"/repos/globex/other/deployments/{deployment}/statuses"),
        ("POST", "/repos/acme/web/deployments/1234567890123456789012/statuses"),
    ):
        assert _call(github_emulator, token, method, path, json={"state": "success"}).status_code == 404, path
    with pytest.raises(GitHubAppError) as err:
        app.create_deployment(inst, "acme/nope", _body(sha))
    assert err.value.status == 404 and not err.value.transient


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ref": ""},
        {"ref": "f" * 40},
        {"ref": "no-such-branch"},
        {"ref": "--upload-pack=touch /tmp/x"},
        {"ref": "main", "transient_environment": "yes"},
        {"ref": "main", "payload": [1, 2]},
        {"ref": "main", "payload": "{not json"},
        {"ref": "main", "required_contexts": "ci"},
        {"ref": "main", "environment": 7},
        {"ref": "main", "description": "d" * 141},
        ["ref", "main"],
    ],
)
def test_invalid_deployments_are_422_and_create_nothing(github_emulator, deploy_repo, body):
    app, inst, emu_repo, _sha = deploy_repo
    response = _call(github_emulator, app.installation_token(inst), "POST", "/repos/acme/web/deployments", json=body)
    assert response.status_code == 422 and response.json()["message"]
    assert github_emulator.deployments_for(emu_repo.id) == []


def test_invalid_statuses_are_422_and_malformed_json_400(github_emulator, deploy_repo):
    app, inst, _emu_repo, sha = deploy_repo
    deployment = app.create_deployment(inst, "acme/web", _body(sha))
    token = app.installation_token(inst)
    path = f"/repos/acme/web/deployments/{deployment}/statuses"
    for body in ({"state": "done"}, {}, {"state": "success", "log_url": 5}, {"state": "success", "auto_inactive": 1}):
        assert _call(github_emulator, token, "POST", path, json=body).status_code == 422, body
    assert _call(github_emulator, token, "POST", path, content=b"{").status_code == 400
    assert github_emulator.deployments[deployment].statuses == []


def test_faults_hit_the_deployments_api_like_any_other_and_a_lost_answer_still_took_effect(
    github_emulator, deploy_repo
):
    app, inst, emu_repo, sha = deploy_repo
    app.installation_token(inst)
    github_emulator.faults.scripted = ["5xx", "rate_limit", "lost_answer"]
    errors = []
    for _ in range(3):
        with pytest.raises(GitHubAppError) as err:
            app.create_deployment(inst, "acme/web", _body(sha))
        errors.append(err.value)
    assert all(e.transient for e in errors) and errors[1].retry_after is not None
    (created,) = github_emulator.deployments_for(emu_repo.id)  # only the call whose answer was lost
    assert created.sha == sha
