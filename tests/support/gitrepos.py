"""Real git repositories for tests: a bare repo (cloned over file:// or HTTP) and a work tree pushing to it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
    result = subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True, capture_output=True, text=True)
    return result.stdout.strip()


class GitRepo:
    """A bare repository (what the pipeline clones, over file://) and a work tree that pushes to it."""

    def __init__(self, root: Path, name: str):
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        self._tick = 1_700_000_000

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str | None], message: str = "change", branch: str = "main") -> str:
        """Write (or delete, with None) files, commit with a strictly later timestamp, push; return the sha."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self._tick += 60
        stamp = {"GIT_AUTHOR_DATE": f"@{self._tick} +0000", "GIT_COMMITTER_DATE": f"@{self._tick} +0000"}
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message, env=stamp)
        git(self.work, "push", "-q", "origin", f"HEAD:{branch}")
        return git(self.work, "rev-parse", "HEAD")

    def link_submodule(self, path: str, url: str, commit: str, name: str | None = None) -> None:
        """Record a submodule (a `.gitmodules` entry and a gitlink to `commit`) without cloning it: any URL goes."""
        name = name or path
        with (self.work / ".gitmodules").open("a") as gitmodules:
            gitmodules.write(f'[submodule "{name}"]\n\tpath = {path}\n\turl = {url}\n')
        (self.work / path).mkdir(parents=True, exist_ok=True)
        git(self.work, "update-index", "--add", "--cacheinfo", f"160000,{commit},{path}")
