"""Hostile repository URLs at every entry point: registration, manual builds (API and CLI), ref lookup and clone.

Each is refused with a message that says why, before git runs, and leaves nothing behind: no app, no build,
no checkout directory, and no canary file (which a command smuggled into git would create).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from support.hostile_urls import PERMISSIVE, command_urls, local_urls, refused_by_default_urls

from starforge_dag.api import create_app
from starforge_dag.cli import main
from starforge_dag.core.errors import UserBuildError
from starforge_dag.core.inputs import InvalidInput, RepoUrlPolicy
from starforge_dag.git.checkout import checkout
from starforge_dag.git.command import Git, GitFailed
from starforge_dag.git.refs import resolve_ref
from starforge_dag.resources.git import GitResource
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store

pytestmark = pytest.mark.timeout(60)  # `fd::` would block on a descriptor: a hang fails here instead of stalling

ALL_SCHEMES = ",".join(PERMISSIVE.schemes)
SHA = "0123456789abcdef0123456789abcdef01234567"


def _hostile(canary: Path, permissive: bool) -> list[str]:
    urls = command_urls(canary) + local_urls()
    return urls if permissive else urls + refused_by_default_urls()


# Ids by index: the URLs themselves hold newlines and NULs.
CASES = [
    pytest.param(permissive, i, id=f"{'any' if permissive else 'default'}-policy-url{i}")
    for permissive in (False, True)
    for i in range(len(_hostile(Path("/canary"), permissive)))
]
# Postgres cannot hold a NUL, so no stored app can have one: registration refusing it is the whole story.
STORED_CASES = [case for case in CASES if "\x00" not in _hostile(Path("/canary"), case.values[0])[case.values[1]]]


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, permissive: bool) -> None:
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARFORGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_SCHEMES", ALL_SCHEMES if permissive else "https")
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_HOSTS", "*" if permissive else "github.com")


def _policy_settings(settings: Settings, permissive: bool) -> Settings:
    schemes, hosts = (ALL_SCHEMES, "*") if permissive else ("https", "github.com")
    return settings.model_copy(update={"git_allowed_schemes": schemes, "git_allowed_hosts": hosts})


@pytest.mark.parametrize(("permissive", "index"), CASES)
def test_apps_add_refuses_the_url_and_registers_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: Path, permissive: bool, index: int
) -> None:
    urls = _hostile(canary, permissive)
    _env(monkeypatch, tmp_path, permissive)
    runner = CliRunner()
    added = runner.invoke(main, ["apps", "add", "web", "--workspace", "acme", "--repo", urls[index]])
    assert (added.exit_code == 1 and added.exception is None) or isinstance(added.exception, SystemExit)
    assert "Error:" in added.output and ("repository" in added.output or "repository" in added.output.lower())
    assert runner.invoke(main, ["apps", "list"]).output == ""


@pytest.mark.parametrize(("permissive", "index"), STORED_CASES)
def test_manual_build_of_an_app_with_a_hostile_url_is_refused_by_the_api(
    settings: Settings, build_store: BuildStore, canary: Path, permissive: bool, index: int
) -> None:
    urls = _hostile(canary, permissive)
    build_store.add_app("acme", "evil", urls[index], "main")  # a row from before URLs were checked, or written directly
    with TestClient(create_app(_policy_settings(settings, permissive)), headers=_auth(settings)) as client:
        response = client.post("/apps/acme/evil/builds", json={"ref": "main"})
        exact = client.post("/apps/acme/evil/builds", json={"ref": SHA})
    for answer in (response, exact):
        assert answer.status_code == 422, answer.text
        assert "acme/evil cannot be built" in answer.json()["detail"]
    assert build_store.list_builds() == []


@pytest.mark.parametrize("permissive", [False, True], ids=["default", "any"])
def test_starforge_build_refuses_an_app_with_a_hostile_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: Path, permissive: bool
) -> None:
    _env(monkeypatch, tmp_path, permissive)
    store = open_store(Settings().resolved_database_url)
    urls = [url for url in _hostile(canary, permissive) if "\x00" not in url]
    for i, url in enumerate(urls):
        store.add_app("acme", f"evil{i}", url, "main")
    runner = CliRunner()
    for i, url in enumerate(urls):
        exact = [] if i % 2 else ["--ref", SHA]
        built = runner.invoke(main, ["build", f"acme/evil{i}", *exact])
        assert built.exit_code == 1, (url, built.output)
        assert "Error: repository" in built.output, (url, built.output)
    assert store.list_builds() == []


@pytest.mark.parametrize("permissive", [False, True], ids=["default", "any"])
def test_ref_lookup_and_clone_refuse_before_git_runs(tmp_path: Path, canary: Path, permissive: bool) -> None:
    policy = PERMISSIVE if permissive else RepoUrlPolicy()
    for i, url in enumerate(_hostile(canary, permissive)):
        with pytest.raises(InvalidInput):
            resolve_ref(url, "main", policy)
        with pytest.raises(UserBuildError) as refused:
            checkout(url, SHA, tmp_path / f"co-{i}", policy=policy)
        assert refused.value.step == "clone" and "repository" in refused.value.message
        assert not (tmp_path / f"co-{i}").exists()


def test_the_checkout_resource_allows_only_https_to_github_unless_configured(git_repo, tmp_path: Path) -> None:
    repo = git_repo("local")
    sha = repo.commit({"a": "1"})
    with pytest.raises(UserBuildError, match="scheme 'file' is not allowed"):
        GitResource(workdir=str(tmp_path / "work")).checkout(1, repo.url, sha)
    tree = GitResource(workdir=str(tmp_path / "work"), allowed_schemes=["file"], allowed_hosts=[]).checkout(
        1, repo.url, sha
    )
    assert tree.commit_sha == sha


@pytest.mark.parametrize("policy", [RepoUrlPolicy(), PERMISSIVE], ids=["default", "any"])
def test_git_itself_refuses_transport_helpers_when_a_url_gets_past_validation(
    tmp_path: Path, canary: Path, policy: RepoUrlPolicy
) -> None:
    """Defence in depth: the hardened environment allows no protocol it was not told to, and never ext or fd."""
    git = Git(policy, timeout_s=20)
    for url in (f"ext::sh -c touch% {canary}", "fd::17", "fd::0,1/repo"):
        with pytest.raises(GitFailed, match="not allowed"):
            git.run("ls-remote", "--", url, cwd=tmp_path)
    with pytest.raises(GitFailed):  # after `--`, an option-looking URL is only a (missing) repository path
        git.run("ls-remote", "--", f"--upload-pack=touch {canary}", cwd=tmp_path)


@pytest.mark.parametrize(
    "ref",
    [
        "--upload-pack=touch {canary}",
        "--exec=touch {canary}",
        "-u",
        "HEAD",
        "@{-1}",
        "main..other",
        "refs/heads/../../etc",
        "a b",
        "x.lock",
        "main\x00",
        "\ud800",
        "main:refs/heads/x",
        "feature^{}",
        "a" * 300,
    ],
)
def test_manual_build_refs_that_are_neither_branch_nor_commit_are_a_bad_request(
    api_client: TestClient, build_store: BuildStore, git_repo, canary: Path, ref: str
) -> None:
    repo = git_repo("shop")
    repo.commit({"a": "1"})
    build_store.add_app("acme", "shop", repo.url, "main")
    response = api_client.post(
        "/apps/acme/shop/builds", content=json.dumps({"ref": ref.replace("{canary}", str(canary))})
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]
    assert build_store.list_builds() == []


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}


def test_starforge_build_refuses_refs_that_are_neither_branch_nor_commit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, git_repo, canary: Path
) -> None:
    _env(monkeypatch, tmp_path, permissive=True)
    repo = git_repo("shop")
    repo.commit({"a": "1"})
    open_store(Settings().resolved_database_url).add_app("acme", "shop", repo.url, "main")
    runner = CliRunner()
    for ref in (f"--upload-pack=touch {canary}", "-u", "HEAD", "@{-1}", "a..b", "x.lock", "main:x"):
        built = runner.invoke(main, ["build", "acme/shop", f"--ref={ref}"])
        assert built.exit_code == 1 and "neither a branch name nor a full commit id" in built.output, (
            ref,
            built.output,
        )
    assert open_store(Settings().resolved_database_url).list_builds() == []
