"""Resolve what a user asks to build (a branch or an exact commit) to a commit id, without cloning."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..core.inputs import InvalidInput, RepoUrlPolicy, check_branch, check_repo_url
from .command import DEFAULT_TIMEOUT_S, Git, GitFailed, GitTimeout, redact_url

BRANCH_PREFIX = "refs/heads/"
_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class RefNotFound(LookupError):
    """The branch does not exist in the repository."""


class RefError(RuntimeError):
    """The repository could not be asked (unreachable, auth, timeout)."""


def resolve_ref(
    repo_url: str,
    ref: str,
    policy: RepoUrlPolicy,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    host_env: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Return (ref, commit id): a full commit id is taken as is; a branch is looked up with `git ls-remote`.

    Raises InvalidInput (a ValueError) for a URL the policy refuses or a ref that is neither, before git runs.
    """
    check_repo_url(repo_url, policy)
    if _COMMIT_ID.fullmatch(ref):
        return ref, ref
    branch = ref.removeprefix(BRANCH_PREFIX)
    try:
        check_branch(branch)
    except InvalidInput:
        raise InvalidInput(
            f"{ref[:80]!r} is neither a branch name nor a full commit id (40 or 64 lowercase hex digits)"
        ) from None
    try:
        out = Git(policy, timeout_s, host_env=tuple((host_env or {}).items())).run(
            "ls-remote", "--heads", "--", repo_url, BRANCH_PREFIX + branch
        )
    except GitTimeout as exc:
        raise RefError(str(exc)) from None
    except GitFailed as exc:
        raise RefError(f"git ls-remote failed for {redact_url(repo_url)}: {exc.stderr}") from None
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == BRANCH_PREFIX + branch and _COMMIT_ID.fullmatch(sha):
            return branch, sha
    raise RefNotFound(f"branch {branch!r} not found in {redact_url(repo_url)}")
