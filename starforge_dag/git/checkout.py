"""Check out exactly one commit of an app's repository, safely: policy-checked URLs and submodules, no escaping symlinks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from ..core.errors import PermanentBuildError, TransientBuildError, UserBuildError
from ..core.inputs import InvalidInput, RepoUrlPolicy, check_commit_id, check_repo_url, check_text
from .command import Git, GitFailed, GitTimeout, redact_url

CHECKOUT_TIMEOUT_S = 900.0
MAX_SUBMODULE_DEPTH = 4
MAX_SUBMODULES = 100
_GITLINK = "160000"
_TRANSIENT_GIT = (
    "could not resolve host",
    "connection timed out",
    "connection refused",
    "early eof",
    "the remote end hung up",
    "rpc failed",
    "temporary failure",
    "operation timed out",
    "operation too slow",
)


class SourceTree(BaseModel):
    """A checked-out commit: where it is, which commit, and the app's directory inside it."""

    path: str
    app_dir: str
    commit_sha: str
    commit_time: datetime
    commit_message: str = ""
    commit_author: str = ""
    submodules: list[str] = []


@dataclass(frozen=True)
class Submodule:
    """One `.gitmodules` entry of a commit, its URL resolved against its parent's and allowed by the policy."""

    name: str
    path: str
    url: str


def checkout(
    url: str,
    sha: str,
    dest: Path,
    *,
    policy: RepoUrlPolicy,
    root_dir: str = "",
    submodules: bool = True,
    timeout_s: float = CHECKOUT_TIMEOUT_S,
    auth_config: Mapping[str, str] | None = None,
    host_env: Mapping[str, str] | None = None,
) -> SourceTree:
    """Fetch only `sha` (shallow) into `dest`, then its submodules once each URL passed the policy; reuse `dest`.

    `auth_config` (git config carrying an auth header) reaches git through its environment only; `host_env`
    carries the host's PATH, HOME and proxies (see command.HOST_VARIABLES).
    """
    try:
        check_repo_url(url, policy)
        check_commit_id(sha)
    except InvalidInput as exc:
        raise UserBuildError(str(exc), step="clone") from None
    git = Git(policy, timeout_s, tuple((auth_config or {}).items()), tuple((host_env or {}).items()))
    dest = Path(dest)
    try:
        if (dest / ".git").is_dir() and _head(git, dest) == sha:
            subs = [s.path for s in submodules_of(git, dest, url, policy)] if submodules else []
            return _finish(git, dest, sha, root_dir, subs)
    except GitFailed:
        pass
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    found: list[str] = []
    try:
        git.run("init", "--quiet", cwd=dest)
        git.run("fetch", "--quiet", "--no-tags", "--depth", "1", "--", url, sha, cwd=dest)
        git.run("checkout", "--quiet", "--force", "--detach", sha, "--", cwd=dest)
        if submodules:
            found = _update_submodules(git, dest, url, policy, depth=1)
        return _finish(git, dest, sha, root_dir, found)
    except GitFailed as exc:
        raise _classify(exc.stderr, url, sha) from None
    except GitTimeout as exc:
        raise TransientBuildError(f"cloning {redact_url(url)}: {exc}", step="clone") from None


def submodules_of(git: Git, worktree: Path, parent_url: str, policy: RepoUrlPolicy) -> list[Submodule]:
    """The submodules of the checked-out commit, read from its `.gitmodules` blob; a refused URL is the user's error."""
    if not git.run("ls-tree", "-z", "HEAD", "--", ".gitmodules", cwd=worktree):
        return []
    listing = git.run("config", "--null", "--blob", "HEAD:.gitmodules", "--get-regexp", r"^submodule\.", cwd=worktree)
    entries: dict[str, dict[str, str]] = {}
    for record in filter(None, listing.split("\0")):
        key, _, value = record.partition("\n")
        for field in ("path", "url"):
            suffix = "." + field
            if key.startswith("submodule.") and key.endswith(suffix):
                entries.setdefault(key[len("submodule.") : -len(suffix)], {})[field] = value
    if len(entries) > MAX_SUBMODULES:
        raise UserBuildError(f".gitmodules lists {len(entries)} submodules; at most {MAX_SUBMODULES}", step="clone")
    found: list[Submodule] = []
    for name, fields in entries.items():
        path = fields.get("path", "")
        try:
            _check_relative_path(name, "name")
            _check_relative_path(path, "path")
        except InvalidInput as exc:
            raise UserBuildError(f"submodule {name[:80]!r}: {exc}", step="clone") from None
        if not _is_gitlink(git, worktree, path):
            continue  # git ignores .gitmodules entries without a commit in the tree, so do we
        try:
            resolved = resolve_submodule_url(parent_url, fields.get("url", ""))
            check_repo_url(resolved, policy)
        except InvalidInput as exc:
            raise UserBuildError(f"submodule {name!r} ({path}): {exc}", step="clone") from None
        found.append(Submodule(name=name, path=path, url=resolved))
    return found


def _update_submodules(git: Git, worktree: Path, parent_url: str, policy: RepoUrlPolicy, depth: int) -> list[str]:
    """All submodules of this level are checked before any is fetched; their URLs go to git's config, not .gitmodules."""
    subs = submodules_of(git, worktree, parent_url, policy)
    if subs and depth > MAX_SUBMODULE_DEPTH:
        raise UserBuildError(f"submodules nested deeper than {MAX_SUBMODULE_DEPTH} levels", step="clone")
    paths: list[str] = []
    for sub in subs:
        for key, value in (("url", sub.url), ("active", "true"), ("update", "checkout")):
            git.run("config", "--", f"submodule.{sub.name}.{key}", value, cwd=worktree)
    for sub in subs:
        git.run("submodule", "--quiet", "update", "--checkout", "--depth", "1", "--", sub.path, cwd=worktree)
        nested = _update_submodules(git, worktree / sub.path, sub.url, policy, depth + 1)
        paths += [sub.path, *(f"{sub.path}/{p}" for p in nested)]
    return paths


def resolve_submodule_url(parent: str, url: str) -> str:
    """`./x` and `../x` are relative to the parent repository's URL, as git resolves them; others stay as they are."""
    if not url:
        raise InvalidInput("has no url")
    if not url.startswith(("./", "../")):
        return url
    if "://" in parent:
        scheme, _, rest = parent.partition("://")
        authority, _, path = rest.partition("/")
        prefix = f"{scheme}://{authority}/"
    else:
        prefix, _, path = parent.partition(":")
        prefix += ":"
    parts = [p for p in path.rstrip("/").split("/") if p]
    rel = url
    while rel.startswith(("./", "../")):
        if rel.startswith("./"):
            rel = rel[2:]
            continue
        rel = rel[3:]
        if not parts:
            raise InvalidInput(f"relative url {url[:120]!r} climbs above the repository's host")
        parts.pop()
    return prefix + "/".join([*parts, rel]) if rel else prefix + "/".join(parts)


def _check_relative_path(value: str, what: str) -> None:
    check_text(value, what, max_chars=1000)
    parts = value.split("/")
    if not value or value.startswith(("-", "/")) or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"{what} {value[:80]!r} must be a plain relative path inside the repository")


def _is_gitlink(git: Git, worktree: Path, path: str) -> bool:
    listing = git.run("ls-tree", "-z", "HEAD", "--", path, cwd=worktree)
    return any(entry.split(" ", 1)[0] == _GITLINK for entry in listing.split("\0") if entry)


def _head(git: Git, worktree: Path) -> str:
    return git.run("rev-parse", "--verify", "HEAD^{commit}", cwd=worktree).strip()


def _classify(stderr: str, url: str, sha: str) -> Exception:
    shown = redact_url(url)
    lowered = stderr.lower()
    if any(marker in lowered for marker in _TRANSIENT_GIT):
        return TransientBuildError(f"git could not reach {shown}: {stderr}", step="clone")
    if "not our ref" in lowered or "couldn't find remote ref" in lowered or "no such remote ref" in lowered:
        return UserBuildError(f"commit {sha} is not in {shown} (was it force-pushed away?)", step="clone")
    if "does not appear to be a git repository" in lowered or "repository not found" in lowered:
        return UserBuildError(f"{shown} is not a reachable git repository: {stderr}", step="clone")
    if "gitmodules" in lowered:
        found = next((line for line in stderr.splitlines() if "gitmodules" in line.lower()), stderr)
        return UserBuildError(f"a submodule of {shown} was refused by git's object checks: {found}", step="clone")
    if "not allowed" in lowered or "fsck" in lowered or "submodule" in lowered:
        return UserBuildError(f"git refused part of {shown}: {stderr}", step="clone")
    return PermanentBuildError(f"git failed for {shown}: {stderr}", step="clone")


def _finish(git: Git, dest: Path, sha: str, root_dir: str, submodules: list[str]) -> SourceTree:
    head = _head(git, dest)
    if head != sha:
        raise PermanentBuildError(f"checked out {head}, expected {sha}", step="clone")
    check_symlinks(dest)
    app_dir = resolve_inside(dest, root_dir or ".", what="root directory")
    if not app_dir.is_dir():
        raise UserBuildError(f"root directory {root_dir!r} does not exist in commit {sha[:12]}", step="clone")
    committed, author, subject = git.run("show", "--no-patch", "--format=%ct%x00%an%x00%s", sha, "--", cwd=dest).split(
        "\0", 2
    )
    return SourceTree(
        path=str(dest),
        app_dir=str(app_dir),
        commit_sha=sha,
        commit_time=datetime.fromtimestamp(int(committed.strip()), tz=UTC),
        commit_message=printable(subject, 1000),
        commit_author=printable(author, 256),
        submodules=submodules,
    )


def printable(text: str, limit: int) -> str:
    """A line of the repository's own text as the platform may keep and show it: control characters and lone
    surrogates dropped, whitespace collapsed, bounded."""
    spaced = "".join(" " if c.isspace() else c for c in text)
    kept = "".join(c for c in spaced if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    return " ".join(kept.split())[:limit]


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
