"""The GitHub App against the emulator: JWTs, cached installation tokens, renewal, clones of private repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from starforge_dag.core.errors import BuildError
from starforge_dag.core.inputs import RepoUrlPolicy
from starforge_dag.git.checkout import checkout
from starforge_dag.github.app import GitHubApp, GitHubAppError, git_auth_config


@pytest.fixture
def private_repo(github_emulator, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n", "app.txt": "hello\n"}, "first")
    inst = github_emulator.add_installation("acme")
    emu_repo = github_emulator.add_repo("acme", "web", repo.bare, installation_id=inst)
    return repo, emu_repo, inst, sha


def _app(emulator) -> GitHubApp:
    return GitHubApp(emulator.app_id, emulator.private_key, emulator.api_url)


def test_app_lists_installations_and_reachable_repositories(github_emulator, private_repo):
    _repo, emu_repo, inst, _sha = private_repo
    app = _app(github_emulator)
    assert app.app_info()["id"] == github_emulator.app_id
    assert [i.id for i in app.installations()] == [inst]
    assert [r.full_name for r in app.installation_repositories(inst)] == ["acme/web"]
    assert app.repo_installation("acme/web") == inst
    assert app.repository_by_id(inst, emu_repo.id).private is True


def test_a_wrong_key_is_refused_with_github_s_answer(github_emulator):
    from starforge_dag.emulators.github import new_private_key

    with pytest.raises(GitHubAppError) as err:
        GitHubApp(github_emulator.app_id, new_private_key(), github_emulator.api_url).installations()
    assert err.value.status == 401
    assert "JSON web token" in str(err.value)


def test_installation_token_is_cached_and_renewed_after_revocation(github_emulator, private_repo):
    _repo, _emu_repo, inst, _sha = private_repo
    app = _app(github_emulator)
    first = app.installation_token(inst)
    assert _app(github_emulator).installation_token(inst) == first  # cached across instances
    assert len(github_emulator.issued_tokens()) == 1
    github_emulator.revoke_tokens()
    assert [r.name for r in app.installation_repositories(inst)] == ["web"]  # 401 → renewed → answered
    assert len(github_emulator.issued_tokens()) == 2
    assert app.installation_token(inst) != first


def test_a_token_near_its_expiry_is_renewed_before_use(github_emulator, private_repo):
    _repo, _emu_repo, inst, _sha = private_repo
    github_emulator.token_ttl_s = 120  # less than REFRESH_BEFORE: never reused
    app = _app(github_emulator)
    first = app.installation_token(inst)
    assert app.installation_token(inst) != first


def test_private_repository_clones_only_with_a_token_that_stays_out_of_git_config(
    github_emulator, private_repo, tmp_path: Path
):
    _repo, emu_repo, inst, sha = private_repo
    app = _app(github_emulator)
    url = app.repository_by_id(inst, emu_repo.id).clone_url
    policy = RepoUrlPolicy(schemes=("http",), hosts=(f"127.0.0.1:{github_emulator.port}",))
    with pytest.raises(BuildError):
        checkout(url, sha, tmp_path / "anonymous", policy=policy)
    token = app.installation_token(inst)
    tree = checkout(url, sha, tmp_path / "co", policy=policy, auth_config=git_auth_config(token, url))
    assert (Path(tree.path) / "app.txt").read_text() == "hello\n"
    config = (Path(tree.path) / ".git" / "config").read_text()
    assert token not in config and "Authorization" not in config
    github_emulator.expire_tokens()
    with pytest.raises(BuildError):
        checkout(url, sha, tmp_path / "expired", policy=policy, auth_config=git_auth_config(token, url))


def test_rate_limits_and_server_errors_are_classified(github_emulator, private_repo):
    _repo, _emu_repo, inst, _sha = private_repo
    app = _app(github_emulator)
    github_emulator.faults.scripted = ["rate_limit", "rate_limit", "5xx"]
    seen = []
    for _ in range(3):
        with pytest.raises(GitHubAppError) as err:
            app.installations()
        seen.append(err.value)
    assert all(e.transient for e in seen)
    assert [e.retry_after is not None for e in seen] == [True, True, False]
    assert seen[2].status == 502
    assert [i.id for i in app.installations()] == [inst]


def test_emulator_refuses_expired_too_long_and_foreign_jwts(github_emulator):
    import time

    import httpx
    import jwt

    now = int(time.time())
    key = github_emulator.private_key
    tokens = {
        "expired": jwt.encode({"iss": str(github_emulator.app_id), "iat": now - 900, "exp": now - 300}, key, "RS256"),
        "too long": jwt.encode({"iss": str(github_emulator.app_id), "iat": now, "exp": now + 3600}, key, "RS256"),
        "other app": jwt.encode({"iss": "1", "iat": now, "exp": now + 300}, key, "RS256"),
        "unsigned": jwt.encode({"iss": str(github_emulator.app_id), "iat": now, "exp": now + 300}, None, "none"),
    }
    for what, token in tokens.items():
        answer = httpx.get(f"{github_emulator.api_url}/app", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, what
        assert answer.headers["x-ratelimit-limit"] == "5000"
    good = jwt.encode({"iss": str(github_emulator.app_id), "iat": now - 60, "exp": now + 540}, key, "RS256")
    assert httpx.get(f"{github_emulator.api_url}/app", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_slow_github_is_a_transient_error_not_a_hang(github_emulator, private_repo):
    github_emulator.faults.scripted = ["slow"]
    app = GitHubApp(github_emulator.app_id, github_emulator.private_key, github_emulator.api_url, timeout_s=0.5)
    with pytest.raises(GitHubAppError) as err:
        app.installations()
    assert err.value.transient and "did not answer" in str(err.value)
