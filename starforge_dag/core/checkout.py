"""Check out exactly one commit of an app's repository, safely (no ext::, no escaping symlinks)."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from .errors import PermanentBuildError, TransientBuildError, UserBuildError

if TYPE_CHECKING:
    import git

_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")
ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")
_TRANSIENT_GIT = (
    "could not resolve host",
    "connection timed out",
    "connection refused",
    "early eof",
    "the remote end hung up",
    "rpc failed",
    "temporary failure",
    "operation timed out",
)


class SourceTree(BaseModel):
    """A checked-out commit: where it is, which commit, and the app's directory inside it."""

    path: str
    app_dir: str
    commit_sha: str
    commit_time: datetime
    submodules: list[str] = []


def check_repo_url(url: str, allowed_schemes: tuple[str, ...] = ALLOWED_SCHEMES) -> None:
    """Refuse URLs that make git run commands or read arbitrary local paths."""
    if url.startswith("-") or "::" in url.split("/", 1)[0] or url.lower().startswith("ext::"):
        raise UserBuildError(f"repository URL {url!r} is not allowed (transport helpers are disabled)", step="clone")
    if _SCP_LIKE.match(url):
        scheme = "ssh"
    else:
        scheme, sep, _ = url.partition("://")
        if not sep:
            raise UserBuildError(
                f"repository URL {url!r} is not a URL; use https://, ssh:// or git@host:owner/repo", step="clone"
            )
    if scheme.lower() not in allowed_schemes:
        raise UserBuildError(
            f"repository URL scheme {scheme!r} is not allowed (allowed: {', '.join(allowed_schemes)})", step="clone"
        )


def _git_env() -> dict[str, str]:
    return {"GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file", "GIT_CONFIG_NOSYSTEM": "1"}


def checkout(
    url: str, sha: str, dest: Path, *, root_dir: str = "", allowed_schemes=ALLOWED_SCHEMES, submodules: bool = True
) -> SourceTree:
    """Fetch only `sha` (shallow) into `dest`, with submodules; reuse `dest` if it already holds it."""
    import git  # GitPython is slow to import; only the clone step needs it

    check_repo_url(url, allowed_schemes)
    if not _SHA.match(sha):
        raise UserBuildError(f"{sha!r} is not a full commit sha", step="clone")
    dest = Path(dest)
    if (dest / ".git").is_dir():
        try:
            if git.Repo(dest).head.commit.hexsha == sha:
                return _finish(dest, sha, root_dir)
        except (git.GitError, ValueError):
            pass
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    repo = git.Repo.init(dest)
    env = _git_env()
    protocol_file = "always" if "file" in allowed_schemes else "never"
    opts = ["-c", "protocol.ext.allow=never", "-c", f"protocol.file.allow={protocol_file}"]
    try:
        with repo.git.custom_environment(**env):
            repo.git.remote("add", "origin", url)
            repo.git.execute(["git", *opts, "fetch", "--no-tags", "--depth", "1", "origin", sha])
            repo.git.checkout("--detach", "--force", "FETCH_HEAD")
            if submodules and (dest / ".gitmodules").exists():
                repo.git.execute(["git", *opts, "submodule", "update", "--init", "--recursive", "--depth", "1"])
    except git.GitCommandError as exc:
        raise _classify(exc, url, sha) from None
    return _finish(dest, sha, root_dir)


def _classify(exc: git.GitCommandError, url: str, sha: str) -> Exception:
    text = (exc.stderr or str(exc)).strip()
    lowered = text.lower()
    if any(marker in lowered for marker in _TRANSIENT_GIT):
        return TransientBuildError(f"git could not reach {url}: {text}", step="clone")
    if "not our ref" in lowered or "couldn't find remote ref" in lowered or "no such remote ref" in lowered:
        return UserBuildError(f"commit {sha} is not in {url} (was it force-pushed away?)", step="clone")
    if "does not appear to be a git repository" in lowered or "repository not found" in lowered:
        return UserBuildError(f"{url} is not a reachable git repository: {text}", step="clone")
    return PermanentBuildError(f"git failed for {url}: {text}", step="clone")


def _finish(dest: Path, sha: str, root_dir: str) -> SourceTree:
    import git

    repo = git.Repo(dest)
    head = repo.head.commit
    if head.hexsha != sha:
        raise PermanentBuildError(f"checked out {head.hexsha}, expected {sha}", step="clone")
    check_symlinks(dest)
    app_dir = resolve_inside(dest, root_dir or ".", what="root directory")
    if not app_dir.is_dir():
        raise UserBuildError(f"root directory {root_dir!r} does not exist in commit {sha[:12]}", step="clone")
    subs = [str(s.path) for s in repo.submodules] if (dest / ".gitmodules").exists() else []
    return SourceTree(
        path=str(dest),
        app_dir=str(app_dir),
        commit_sha=sha,
        commit_time=datetime.fromtimestamp(head.committed_date, tz=UTC),
        submodules=subs,
    )


def resolve_inside(root: Path, relative: str, *, what: str) -> Path:
    """`root/relative`, refusing anything that resolves outside `root`."""
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise UserBuildError(f"{what} {relative!r} points outside the repository", step="clone")
    return target


def check_symlinks(root: Path) -> None:
    """Refuse a checkout with a symlink that leads outside it (it would leak host files into the build)."""
    root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames and Path(dirpath) == root:
            dirnames.remove(".git")
        for name in (*dirnames, *filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                target = (path.parent / os.readlink(path)).resolve()
                if target != root and root not in target.parents:
                    rel = path.relative_to(root)
                    raise UserBuildError(
                        f"symlink {rel} points outside the repository ({os.readlink(path)}); remove it", step="clone"
                    )
