"""`starforge apps add --github-repo` and `starforge github check` against the emulator."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from support.gitrepos import GitRepo

from starforge_dag.cli import main
from starforge_dag.emulators.github import new_private_key
from starforge_dag.settings import get_settings
from starforge_dag.store import open_store
from starforge_dag.store.github import GitHubStore


@pytest.fixture
def cli_env(tmp_path, monkeypatch, github_emulator):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARFORGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("STARFORGE_GITHUB_APP_ID", str(github_emulator.app_id))
    monkeypatch.setenv("STARFORGE_GITHUB_APP_PRIVATE_KEY", github_emulator.private_key)
    monkeypatch.setenv("STARFORGE_GITHUB_API_URL", github_emulator.api_url)
    monkeypatch.setenv("STARFORGE_GITHUB_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_SCHEMES", "http")
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_HOSTS", f"127.0.0.1:{github_emulator.port}")
    repo = GitRepo(tmp_path, "web")
    repo.commit({"Dockerfile": "FROM scratch\n"})
    inst = github_emulator.add_installation("acme")
    return github_emulator, github_emulator.add_repo("acme", "web", repo.bare, installation_id=inst), inst


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_apps_add_github_repo_resolves_id_and_installation_through_the_app(cli_env):
    emulator, repo, inst = cli_env
    added = invoke("apps", "add", "web", "--workspace", "acme", "--github-repo", "acme/web")
    assert added.exit_code == 0, added.output
    out = json.loads(added.output)
    assert out["github_repo_id"] == repo.id and out["github_installation_id"] == inst
    assert out["repo_url"] == emulator.clone_url(repo)
    link = GitHubStore(open_store(get_settings().resolved_database_url).engine).app_repo(out["id"])
    assert link is not None and (link.repo_id, link.installation_id) == (repo.id, inst)

    missing = invoke("apps", "add", "other", "--github-repo", "acme/nope")
    assert missing.exit_code == 1 and "not installed on acme/nope" in missing.output
    assert invoke("apps", "add", "x", "--github-repo", "a/b", "--repo", "https://github.com/a/b").exit_code == 1


def test_github_check_lists_installations_and_repositories(cli_env):
    _emulator, _repo, inst = cli_env
    assert invoke("apps", "add", "web", "--workspace", "acme", "--github-repo", "acme/web").exit_code == 0
    result = invoke("github", "check")
    assert result.exit_code == 0, result.output
    assert f"installation {inst} on acme: 1 repositories: acme/web" in result.output
    assert "app acme/web → acme/web" in result.output


def test_github_check_says_exactly_what_is_wrong(cli_env, monkeypatch):
    monkeypatch.setenv("STARFORGE_GITHUB_APP_PRIVATE_KEY", new_private_key())
    result = invoke("github", "check")
    assert result.exit_code == 1
    assert "app id 4242 and private key do not match" in result.output

    monkeypatch.setenv("STARFORGE_GITHUB_APP_PRIVATE_KEY", "/nonexistent/key.pem")
    monkeypatch.delenv("STARFORGE_GITHUB_WEBHOOK_SECRET")
    result = invoke("github", "check")
    assert result.exit_code == 1
    assert "neither a PEM key nor the path of a readable file" in result.output
    assert "STARFORGE_GITHUB_WEBHOOK_SECRET is not set" in result.output
