"""Pull requests on the GitHub emulator for tests: a branch of the base repository, or a fork with its own commits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starforge_dag.core.previews import PullRequest
from starforge_dag.emulators.github import EmuRepo, GitHubEmulator
from support.gitrepos import git


def held_fork_pull(number: int, sha: str, action: str = "opened", base_repo_id: int = 11) -> PullRequest:
    """A pull_request event's facts from a fork by an outside contributor: the gate holds it."""
    return PullRequest(
        action=action,
        number=number,
        head_sha=sha,
        base_repo_id=base_repo_id,
        head_repo_id=base_repo_id + 1,
        head_repo_full_name="mallory/web",
        head_ref="patch",
        author="mallory",
        author_association="FIRST_TIME_CONTRIBUTOR",
        sender="mallory",
    )


@dataclass
class Branch:
    """A work tree on its own branch, pushing to a bare repository (the base's, or a fork's)."""

    work: Path
    name: str
    repo: EmuRepo
    tick: int = 1_800_000_000

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.tick += 60
        stamp = {"GIT_AUTHOR_DATE": f"@{self.tick} +0000", "GIT_COMMITTER_DATE": f"@{self.tick} +0000"}
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message, env=stamp)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{self.name}")
        return git(self.work, "rev-parse", "HEAD")


def same_repo_branch(root: Path, base_bare: Path, repo: EmuRepo, name: str) -> Branch:
    """A work tree of the base repository on a new branch `name`."""
    work = root / f"{repo.name}-{name}-work"
    git(root, "clone", "-q", str(base_bare), str(work))
    git(work, "checkout", "-q", "-b", name)
    return Branch(work, name, repo)


def fork_branch(
    emulator: GitHubEmulator, root: Path, base_bare: Path, base: EmuRepo, owner: str, name: str = "patch"
) -> Branch:
    """A fork of the base repository owned by `owner` (its own bare repository and id), on branch `name`."""
    bare = root / f"{owner}-{base.name}.git"
    git(root, "clone", "-q", "--bare", str(base_bare), str(bare))
    fork = emulator.fork(base.id, owner, bare)
    work = root / f"{owner}-{base.name}-work"
    git(root, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", name)
    return Branch(work, name, fork)
