"""Exact-commit checkouts from real repositories, and the URL and symlink tricks they refuse."""

import os

import pytest
from support.gitrepos import git

from starforge_dag.core.errors import ErrorKind, UserBuildError
from starforge_dag.core.inputs import InvalidInput, RepoUrlPolicy, check_repo_url
from starforge_dag.git.checkout import checkout

FILE = RepoUrlPolicy(schemes=("file",), hosts=())


def test_checks_out_exactly_the_pushed_commit_shallow(git_repo, tmp_path):
    repo = git_repo("app")
    first = repo.commit({"a.txt": "one"})
    repo.commit({"a.txt": "two"})

    tree = checkout(repo.url, first, tmp_path / "co", policy=FILE)

    assert (tmp_path / "co" / "a.txt").read_text() == "one"
    assert tree.commit_sha == first and tree.app_dir == str(tmp_path / "co")
    assert git(tmp_path / "co", "rev-list", "--count", "HEAD") == "1"  # shallow: only the commit itself
    assert tree.commit_time.timestamp() == int(git(tmp_path / "co", "show", "-s", "--format=%ct", "HEAD"))


def test_the_commit_s_subject_and_author_come_from_the_checkout_as_printable_text(git_repo, tmp_path):
    repo = git_repo("app")
    sha = repo.commit({"a.txt": "one"}, message="Fix\tthe  <b>login</b> \x1b[31mpage\x1b[0m\n\nA body that is not kept")

    tree = checkout(repo.url, sha, tmp_path / "co", policy=FILE)

    assert tree.commit_message == "Fix the <b>login</b> [31mpage[0m"  # escaping is the page's job, not the store's
    assert tree.commit_author == "Test Author"


def test_submodules_are_checked_out(git_repo, tmp_path):
    lib = git_repo("lib")
    lib.commit({"lib.txt": "library"})
    repo = git_repo("app")
    git(repo.work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.url, "vendor/lib")
    sha = repo.commit({"main.txt": "app"})

    tree = checkout(repo.url, sha, tmp_path / "co", policy=FILE)

    assert (tmp_path / "co" / "vendor" / "lib" / "lib.txt").read_text() == "library"
    assert tree.submodules == ["vendor/lib"]


def test_root_dir_must_exist_and_stay_inside(git_repo, tmp_path):
    repo = git_repo("mono")
    sha = repo.commit({"services/api/Dockerfile": "FROM x\n"})
    assert checkout(repo.url, sha, tmp_path / "a", policy=FILE, root_dir="services/api").app_dir == str(
        tmp_path / "a" / "services" / "api"
    )
    with pytest.raises(UserBuildError, match="does not exist"):
        checkout(repo.url, sha, tmp_path / "b", policy=FILE, root_dir="services/web")
    with pytest.raises(UserBuildError, match="outside the repository"):
        checkout(repo.url, sha, tmp_path / "c", policy=FILE, root_dir="../..")


def test_symlink_leading_out_of_the_repo_is_refused(git_repo, tmp_path):
    repo = git_repo("sneaky")
    os.symlink("/etc/passwd", repo.work / "passwd")
    sha = repo.commit({"Dockerfile": "FROM x\n"})
    with pytest.raises(UserBuildError, match="symlink passwd points outside"):
        checkout(repo.url, sha, tmp_path / "co", policy=FILE)


def test_symlink_inside_the_repo_is_fine(git_repo, tmp_path):
    repo = git_repo("links")
    (repo.work / "docs").mkdir()
    os.symlink("../README", repo.work / "docs" / "README")
    sha = repo.commit({"README": "hi"})
    checkout(repo.url, sha, tmp_path / "co", policy=FILE)
    assert (tmp_path / "co" / "docs" / "README").read_text() == "hi"


def test_a_refused_url_fails_the_build_as_the_users_error_before_git_runs(tmp_path):
    with pytest.raises(UserBuildError, match="not allowed") as info:
        checkout("ext::sh -c touch% /tmp/pwned", "a" * 40, tmp_path / "co", policy=FILE)
    assert info.value.step == "clone" and not (tmp_path / "co").exists()


def test_common_urls_are_accepted():
    everything = RepoUrlPolicy(schemes=("https", "ssh"), hosts=("github.com",))
    for url in ("https://github.com/acme/web.git", "ssh://git@github.com/acme/web.git", "git@github.com:acme/web.git"):
        check_repo_url(url, everything)
    with pytest.raises(InvalidInput):
        check_repo_url("file:///srv/repo.git", RepoUrlPolicy(schemes=("https",)))


def test_missing_commit_is_a_user_error(git_repo, tmp_path):
    repo = git_repo("app")
    repo.commit({"a": "1"})
    with pytest.raises(UserBuildError) as info:
        checkout(repo.url, "1" * 40, tmp_path / "co", policy=FILE)
    assert info.value.kind == ErrorKind.USER and "not in" in info.value.message


def test_reuses_an_existing_checkout_of_the_same_commit(git_repo, tmp_path):
    repo = git_repo("app")
    sha = repo.commit({"a": "1"})
    checkout(repo.url, sha, tmp_path / "co", policy=FILE)
    (tmp_path / "co" / "marker").write_text("kept")
    checkout(repo.url, sha, tmp_path / "co", policy=FILE)
    assert (tmp_path / "co" / "marker").read_text() == "kept"


def test_checks_out_over_smart_http(git_repo, git_http, tmp_path):
    repo = git_repo("served")
    first = repo.commit({"a.txt": "one"})
    repo.commit({"a.txt": "two"})
    url = f"{git_http}/served.git"

    tree = checkout(url, first, tmp_path / "co", policy=RepoUrlPolicy(schemes=("http",), hosts=("127.0.0.1",)))

    assert (tmp_path / "co" / "a.txt").read_text() == "one" and tree.commit_sha == first
    assert git(tmp_path / "co", "rev-list", "--count", "HEAD") == "1"
