"""Resolve what a user asks to build (a branch or an exact commit) to a commit sha, without cloning."""

from __future__ import annotations

import os
import re
import subprocess

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
BRANCH_PREFIX = "refs/heads/"
_TIMEOUT_S = 30
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class RefNotFound(LookupError):
    """The branch does not exist in the repository."""


class RefError(RuntimeError):
    """The repository could not be asked (unreachable, auth, bad URL)."""


def resolve_ref(repo_url: str, ref: str) -> tuple[str, str]:
    """Return (ref, sha): a 40-hex sha is taken as is; a branch is looked up with `git ls-remote`."""
    ref = ref.strip()
    if SHA_RE.match(ref.lower()):
        return ref.lower(), ref.lower()
    branch = ref.removeprefix(BRANCH_PREFIX)
    if not _valid_branch(branch):
        raise ValueError(f"{ref!r} is neither a branch name nor a 40-hex commit sha")
    out = _git("ls-remote", "--heads", repo_url, BRANCH_PREFIX + branch)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == BRANCH_PREFIX + branch:
            return branch, sha
    raise RefNotFound(f"branch {branch!r} not found in {redact_url(repo_url)}")


def redact_url(text: str) -> str:
    """Drop credentials embedded in URLs (`https://user:token@host/...`) before text is shown or logged."""
    return _USERINFO.sub(r"\1***@", text)


def _valid_branch(branch: str) -> bool:
    """Git's own ref-name rules, on the full ref so that `@{-1}`-style shorthands are never expanded."""
    if not branch or branch.startswith("-"):
        return False
    return subprocess.run(["git", "check-ref-format", BRANCH_PREFIX + branch], capture_output=True).returncode == 0


def _git(*args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise RefError(f"git {args[0]} timed out after {_TIMEOUT_S}s") from None
    if done.returncode != 0:
        detail = redact_url(done.stderr.strip()) or f"exit {done.returncode}"
        raise RefError(f"git {args[0]} failed: {detail}")
    return done.stdout
