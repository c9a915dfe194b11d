"""Submodules obey the repository's URL policy, checked for every submodule before git fetches any of them.

The parent repository is served over git's smart HTTP (the only allowed scheme and host here), so a submodule
pointing at the build host's files, at another host or at a transport helper is the only way out; each is a
failed build that names the submodule, with nothing fetched, and legitimate submodules on the allowed host work.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from starforge_dag.core.errors import ErrorKind, UserBuildError
from starforge_dag.core.inputs import InvalidInput, RepoUrlPolicy
from starforge_dag.git.checkout import checkout, resolve_submodule_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def policy(git_http: str) -> RepoUrlPolicy:
    return RepoUrlPolicy(schemes=("http",), hosts=(urlsplit(git_http).netloc,))


@pytest.fixture
def secret(git_repo):
    """Another tenant's repository on the build host: what a hostile submodule would like to read."""
    repo = git_repo("secret")
    repo.commit({"SECRET.txt": "other tenant's source"})
    return repo


@pytest.fixture
def lib(git_repo):
    repo = git_repo("lib")
    repo.commit({"lib.txt": "library"})
    return repo


def _head(repo) -> str:
    from support.gitrepos import git

    return git(repo.work, "rev-parse", "HEAD")


def test_submodules_on_the_allowed_host_are_checked_out(git_repo, git_http, lib, policy, tmp_path: Path) -> None:
    inner = git_repo("inner")
    inner.commit({"inner.txt": "nested"})
    lib.link_submodule("deps/inner", "../inner.git", _head(inner))  # relative to lib's own URL
    lib.commit({"lib.txt": "library"})
    app = git_repo("app")
    app.link_submodule("vendor/lib", "../lib.git", _head(lib))  # relative: resolved against the app's http URL
    app.link_submodule("vendor/lib-abs", f"{git_http}/lib.git", _head(lib), name="lib-abs")
    sha = app.commit({"main.txt": "app"})

    tree = checkout(f"{git_http}/app.git", sha, tmp_path / "co", policy=policy)

    assert (tmp_path / "co" / "vendor" / "lib" / "lib.txt").read_text() == "library"
    assert (tmp_path / "co" / "vendor" / "lib-abs" / "lib.txt").read_text() == "library"
    assert (tmp_path / "co" / "vendor" / "lib" / "deps" / "inner" / "inner.txt").read_text() == "nested"
    assert sorted(tree.submodules) == [
        "vendor/lib",
        "vendor/lib-abs",
        "vendor/lib-abs/deps/inner",
        "vendor/lib/deps/inner",
    ]


def _hostile(secret, git_http: str, canary: Path) -> dict[str, str]:
    port = urlsplit(git_http).port
    return {
        "file url": f"file://{secret.bare}",
        "local path": str(secret.bare),
        "relative local path": "secret.git",
        "ext helper": f"ext::sh -c touch% {canary}",
        "fd helper": "fd::17",
        "option": f"--upload-pack=touch {canary}",
        "ssh proxy command": f"ssh://-oProxyCommand=touch%20{canary}/x.git",
        "other host": f"http://localhost:{port}/secret.git",
        "other scheme": f"https://{urlsplit(git_http).netloc}/secret.git",
        "climbs above the host": "../../../../secret.git",
    }


CASES = list(_hostile(type("R", (), {"bare": Path("/x")}), "http://127.0.0.1:1", Path("/c")))


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_submodule_fails_the_build_before_anything_is_fetched(
    git_repo, git_http, lib, secret, policy, canary: Path, tmp_path: Path, case: str
) -> None:
    app = git_repo("app")
    app.link_submodule("vendor/lib", "../lib.git", _head(lib), name="good")  # listed first: still never fetched
    app.link_submodule("vendor/evil", _hostile(secret, git_http, canary)[case], _head(secret), name="evil")
    sha = app.commit({"main.txt": "app"})

    with pytest.raises(UserBuildError) as refused:
        checkout(f"{git_http}/app.git", sha, tmp_path / "co", policy=policy)

    assert refused.value.kind == ErrorKind.USER and refused.value.step == "clone"
    message = refused.value.message  # ours, or git's own fsck of the fetched .gitmodules (options in URLs)
    assert "submodule 'evil' (vendor/evil)" in message or "disallowed submodule url" in message
    assert not (tmp_path / "co" / ".git" / "modules").exists()  # no submodule was cloned
    assert list((tmp_path / "co" / "vendor" / "lib").glob("*")) == []
    assert "other tenant" not in "".join(p.read_text() for p in (tmp_path / "co").rglob("*.txt"))


def test_a_hostile_nested_submodule_is_refused_before_it_is_fetched(
    git_repo, git_http, lib, secret, policy, tmp_path: Path
) -> None:
    lib.link_submodule("deps/secret", f"file://{secret.bare}", _head(secret), name="sneaky")
    lib.commit({"lib.txt": "library"})
    app = git_repo("app")
    app.link_submodule("vendor/lib", "../lib.git", _head(lib))
    sha = app.commit({"main.txt": "app"})

    with pytest.raises(UserBuildError, match=r"submodule 'sneaky' \(deps/secret\): repository URL scheme 'file'"):
        checkout(f"{git_http}/app.git", sha, tmp_path / "co", policy=policy)
    assert not (tmp_path / "co" / "vendor" / "lib" / "deps" / "secret" / "SECRET.txt").exists()


@pytest.mark.parametrize(("field", "value"), [("path", "../outside"), ("path", "-x"), ("name", "../../modules/x")])
def test_submodule_names_and_paths_that_leave_the_repository_are_refused(
    git_repo, git_http, lib, policy, tmp_path: Path, field: str, value: str
) -> None:
    app = git_repo("app")
    app.link_submodule("vendor/lib", "../lib.git", _head(lib))
    text = (app.work / ".gitmodules").read_text()
    (app.work / ".gitmodules").write_text(
        text.replace(
            "path = vendor/lib" if field == "path" else '"vendor/lib"',
            f"path = {value}" if field == "path" else f'"{value}"',
        )
    )
    sha = app.commit({"main.txt": "app"})

    with pytest.raises(UserBuildError, match="must be a plain relative path|disallowed submodule (path|name)"):
        checkout(f"{git_http}/app.git", sha, tmp_path / "co", policy=policy)
    assert not (tmp_path / "co" / ".git" / "modules").exists()


@pytest.mark.parametrize(
    ("parent", "url", "resolved"),
    [
        ("https://github.com/acme/app.git", "../lib.git", "https://github.com/acme/lib.git"),
        ("https://github.com/acme/app.git", "./lib.git", "https://github.com/acme/app.git/lib.git"),
        ("https://github.com/acme/app", "../../other/lib", "https://github.com/other/lib"),
        ("git@github.com:acme/app.git", "../lib.git", "git@github.com:acme/lib.git"),
        ("https://github.com/acme/app.git", "https://github.com/x/y.git", "https://github.com/x/y.git"),
    ],
)
def test_relative_submodule_urls_resolve_as_git_resolves_them(parent: str, url: str, resolved: str) -> None:
    assert resolve_submodule_url(parent, url) == resolved


def test_a_relative_url_may_not_climb_into_the_host() -> None:
    with pytest.raises(InvalidInput, match="climbs above"):
        resolve_submodule_url("https://github.com/acme/app.git", "../../../evil.example/x.git")


def test_a_build_whose_commit_has_a_hostile_submodule_fails_as_the_users_error(
    settings, pipeline, build_store, github_webhooks, git_repo, git_http, lib, secret, tmp_path: Path
) -> None:
    """Through the webhook, the queue and the build job: the build ends failed at clone, naming the submodule."""
    from starforge_dag.core.states import BuildState

    app = git_repo("app")
    app.link_submodule("vendor/lib", "../lib.git", _head(lib))
    app.link_submodule("vendor/secret", f"file://{secret.bare}", _head(secret), name="evil")
    sha = app.commit({"Dockerfile": "FROM scratch\n"})
    url = f"{git_http}/app.git"
    build_store.add_app("acme", "shop", url, "main", repo_full_name="acme/shop")
    [build_id] = github_webhooks.deliver(github_webhooks.push(github_webhooks.commit(sha=sha), repo_url=url)).json()[
        "created"
    ]

    netloc = urlsplit(git_http).netloc
    policed = settings.model_copy(
        update={"git_allowed_schemes": "http", "git_allowed_hosts": netloc, "build_backend": "fake"}
    )
    (result,) = pipeline.using(policed).drain()

    assert not result.success
    build = build_store.get_build(build_id)
    assert build.status == BuildState.FAILED and build.error_step == "clone"
    assert "submodule 'evil' (vendor/secret): repository URL scheme 'file' is not allowed" in build.error
    assert not list((policed.workdir / f"build-{build_id}" / "vendor" / "secret").glob("*"))
