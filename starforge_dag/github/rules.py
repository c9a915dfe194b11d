"""Whether a push should build an app: tracked branch, no tag or deletion, no skip marker, a watched path changed.

Watch paths are glob patterns relative to the repository root (`*` and `?` stay inside one path
segment, `**` spans any number of segments, a leading `/` or `./` is ignored). A pattern that
matches a directory covers everything below it, so `services/api` watches that whole directory.
A pattern starting with `!` excludes what it matches; the last matching pattern decides.
With no watch paths the app's `root_dir` (when set) is the implicit watch path, so apps that share
a monorepo build only when their own directory changed; with neither, every change builds.
When the payload cannot tell which files changed (no commits listed, e.g. a branch created at an
existing commit, or GitHub's 2048-commit list cap reached), the push builds.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from starforge_dag.core.models import App

from .push import Commit, PushEvent

# GitHub Actions' documented skip commands, plus our own [skip deploy] pair.
SKIP_MARKERS = (
    "[skip ci]",
    "[ci skip]",
    "[no ci]",
    "[skip actions]",
    "[actions skip]",
    "[skip deploy]",
    "[deploy skip]",
)
_SKIP_TRAILER = re.compile(r"^skip-checks:\s*true\s*$", re.IGNORECASE | re.MULTILINE)
GITHUB_COMMIT_LIMIT = 2048


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    build: bool
    reason: str


def decide(app: App, event: PushEvent) -> Decision:
    """The first rule that rejects the push names the reason; a push no rule rejects builds."""
    if event.is_deletion:
        return Decision(build=False, reason=f"{event.ref} was deleted")
    if event.is_tag:
        return Decision(build=False, reason=f"tag push {event.ref} is not built")
    if event.branch is None:
        return Decision(build=False, reason=f"{event.ref} is not a branch")
    if event.branch != app.branch:
        return Decision(build=False, reason=f"branch {event.branch} is not tracked (app tracks {app.branch})")
    if skipped(event):
        return Decision(build=False, reason="every pushed commit asks to skip ([skip ci] or similar)")
    patterns = effective_watch_paths(app)
    changed = changed_paths(event)
    if patterns and changed is not None and not any(watched(path, patterns) for path in changed):
        return Decision(build=False, reason=f"no changed file matches the watch paths {patterns}")
    if not app.auto_build:
        return Decision(build=False, reason="auto_build is off: the push is recorded, not built")
    return Decision(build=True, reason=f"push to tracked branch {app.branch}")


def has_skip_marker(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in SKIP_MARKERS) or bool(_SKIP_TRAILER.search(message))


def skipped(event: PushEvent) -> bool:
    """A push is skipped only when every commit (or, with none listed, the head commit) carries a marker."""
    commits: list[Commit] = event.commits or ([event.head_commit] if event.head_commit else [])
    return bool(commits) and all(has_skip_marker(c.message) for c in commits)


def changed_paths(event: PushEvent) -> set[str] | None:
    """Paths touched by the push, or None when the payload does not list them all."""
    if not event.commits or len(event.commits) >= GITHUB_COMMIT_LIMIT:
        return None
    return {path for commit in event.commits for path in commit.paths}


def effective_watch_paths(app: App) -> list[str]:
    if app.watch_paths:
        return list(app.watch_paths)
    root = _normalize(app.root_dir)
    return [root] if root else []


def watched(path: str, patterns: list[str]) -> bool:
    """gitignore-like: the last pattern matching the path or one of its parent directories decides."""
    path = _normalize(path)
    candidates = [path, *_parents(path)]
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _compile(_normalize(pattern[1:] if negated else pattern))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _normalize(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    path = path.strip("/")
    return "" if path == "." else path


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """Translate a glob to a regex: `**` crosses directories, `*`/`?`/`[...]` do not; `/` alone is the whole repo."""
    if not pattern:
        return re.compile(".*")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
