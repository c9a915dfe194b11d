"""The validators every entry point shares: commit ids, refs (against git's own check-ref-format) and repo URLs."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest
from support.hostile_urls import PERMISSIVE, command_urls, local_urls, refused_by_default_urls

from starforge_dag.core.inputs import (
    InvalidInput,
    RepoUrlPolicy,
    check_branch,
    check_commit_id,
    check_ref,
    check_repo_url,
    check_text,
)

DEFAULT = RepoUrlPolicy()
HEX40 = "0123456789abcdef0123456789abcdef01234567"
HEX64 = HEX40 + "89abcdef0123456789abcdef"


@pytest.mark.parametrize("value", [HEX40, HEX64, "0" * 40])
def test_full_lowercase_commit_ids_are_accepted(value: str) -> None:
    assert check_commit_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "HEAD",
        "main",
        "--upload-pack=touch /tmp/x",
        "../../etc/passwd",
        "",
        HEX40[:39],
        HEX40 + "a",
        HEX64[:63],
        HEX64 + "a",
        HEX40.upper(),
        "\u0660" * 40,  # Arabic-Indic digits: digits to str.isdigit, not hex
        "\uff10" * 40,  # fullwidth zero
        HEX40 + "\n",
        " " + HEX40,
        HEX40[:20] + "\x00" + HEX40[21:],
        "g" * 40,
        HEX40[:8],
    ],
)
def test_anything_else_is_not_a_commit_id(value: str) -> None:
    with pytest.raises(InvalidInput, match="not a full commit id"):
        check_commit_id(value)


def _ref_corpus() -> list[str]:
    """Names built from the pieces git's rules are about, combined, plus names that look ordinary."""
    pieces = ["a", "main", ".", "..", "/", "//", ".lock", "@", "@{", "{", "~", "^", ":", "?", "*", "[", "\\", " ", "-"]
    pieces += ["\t", "\x7f", "\x01", "é", "x.y", "-x", "v1.0"]
    corpus = ["refs/heads/" + a + b for a, b in itertools.product(pieces, repeat=2)]
    corpus += ["refs/" + a for a in pieces] + [a + "/refs" for a in pieces]
    corpus += ["@", "HEAD", "refs/heads/feature/login", "refs/tags/v1.2.3", "refs/pull/1/head", "main"]
    corpus += ["refs/heads/a.lock/b", "refs/heads/.a/b", "refs/heads/a/.b", "refs/heads/a./b", "refs/heads/a/b."]
    return sorted(r for r in set(corpus) if not r.startswith("-"))  # git's command line would take those as options


def test_ref_rules_agree_with_git_check_ref_format() -> None:
    corpus = _ref_corpus()
    disagreements = []
    for ref in corpus:
        by_git = subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0
        try:
            check_ref(ref)
            ours = True
        except InvalidInput:
            ours = False
        if ours != by_git:
            disagreements.append((ref, by_git))
    assert len(corpus) > 500
    assert disagreements == []


@pytest.mark.parametrize("name", ["main", "feature/login", "release-1.2", "dependabot/npm_and_yarn/x-1.0"])
def test_ordinary_branch_names_are_accepted(name: str) -> None:
    assert check_branch(name) == name


@pytest.mark.parametrize(
    "name", ["-upload-pack=x", "--help", "HEAD", "a..b", "@{-1}", "a b", "x.lock", "", "a\x00b", "\ud800", "a" * 300]
)
def test_branch_names_git_refuses_or_that_read_as_options_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_branch(name)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x" * 101])
def test_text_with_nul_surrogates_or_too_long_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        check_text(value, "name", max_chars=100)


@pytest.mark.parametrize("url", command_urls(Path("/tmp/canary")) + local_urls())
def test_urls_that_run_commands_or_read_the_host_are_refused_under_any_policy(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_repo_url(url, PERMISSIVE)
    assert "repository URL" in str(refused.value)


@pytest.mark.parametrize("url", refused_by_default_urls())
def test_the_default_policy_allows_only_https_to_github(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_repo_url(url, DEFAULT)


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("https://github.com/acme/web.git", DEFAULT),
        ("https://x-access-token:tok@github.com/acme/web.git", DEFAULT),
        ("https://GitHub.com/acme/web", DEFAULT),
        ("https://git.corp.example:8443/acme/web.git", RepoUrlPolicy(hosts=("*.corp.example",))),
        ("http://127.0.0.1:8080/web.git", RepoUrlPolicy(schemes=("http",), hosts=("127.0.0.1",))),
        ("http://[::1]:8080/web.git", RepoUrlPolicy(schemes=("http",), hosts=("[::1]",))),
        ("git@github.com:acme/web.git", RepoUrlPolicy(schemes=("ssh",))),
        ("ssh://git@github.com:22/acme/web.git", RepoUrlPolicy(schemes=("ssh",))),
        ("file:///srv/repos/web.git", RepoUrlPolicy(schemes=("file",), hosts=())),
    ],
)
def test_urls_the_policy_allows_pass(url: str, policy: RepoUrlPolicy) -> None:
    assert check_repo_url(url, policy).url == url


def test_host_port_entries_allow_only_that_port() -> None:
    policy = RepoUrlPolicy(schemes=("http",), hosts=("127.0.0.1:8080",))
    check_repo_url("http://127.0.0.1:8080/x.git", policy)
    with pytest.raises(InvalidInput, match="host '127.0.0.1' is not allowed"):
        check_repo_url("http://127.0.0.1:8081/x.git", policy)


@pytest.mark.parametrize("schemes", ["ext", "fd", "https,ext", "file,fd", "sh"])
def test_transport_helpers_can_never_be_allowed(schemes: str) -> None:
    with pytest.raises(InvalidInput, match="cannot be allowed"):
        RepoUrlPolicy.parse(schemes, "*")
