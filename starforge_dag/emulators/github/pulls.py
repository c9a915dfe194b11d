"""Pull requests, forks and collaborators: the base repository keeps each head in `refs/pull/<number>/head`,
`pull_request` deliveries carry GitHub's shape, and the collaborator permission endpoint answers as GitHub's does."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .answers import answer
from .auth import require_token
from .records import EmuDelivery, EmuRepo, iso
from .repos import repo_by_name, repo_json

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

# A collaborator's permission and the author_association GitHub shows for them.
_ASSOCIATION = {"admin": "COLLABORATOR", "maintain": "COLLABORATOR", "write": "COLLABORATOR", "read": "CONTRIBUTOR"}


@dataclass
class EmuPull:
    number: int
    base_repo_id: int
    head_repo_id: int
    head_ref: str
    head_sha: str
    base_ref: str
    author: str
    state: str = "open"
    merged: bool = False
    labels: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def association(emu: GitHubEmulator, repo: EmuRepo, login: str) -> str:
    """OWNER for the repository's owner, MEMBER for a member of its organization, a collaborator's by permission."""
    if login.lower() == repo.owner.lower():
        return "OWNER"
    with emu._lock:
        if login.lower() in emu.members.get(repo.owner.lower(), set()):
            return "MEMBER"
        permission = emu.collaborators.get((repo.id, login.lower()))
    if permission is not None:
        return _ASSOCIATION.get(permission, "CONTRIBUTOR")
    return "FIRST_TIME_CONTRIBUTOR"


def _set_head(emu: GitHubEmulator, base: EmuRepo, head: EmuRepo, number: int, sha: str) -> None:
    """Copy the head commit into the base repository as `refs/pull/<number>/head`, as GitHub does for forks too."""
    if head.id != base.id:
        subprocess.run(
            ["git", "-C", str(base.path), "fetch", "--quiet", "--no-tags", str(head.path), sha],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["git", "-C", str(base.path), "update-ref", f"refs/pull/{number}/head", sha], check=True, capture_output=True
    )


def open_pull(
    emu: GitHubEmulator, base_repo_id: int, head_repo_id: int, head_ref: str, sha: str, author: str
) -> EmuPull:
    with emu._lock:
        base, head = emu.repos[base_repo_id], emu.repos[head_repo_id]
        number = 1 + max((p.number for p in emu.pulls.values() if p.base_repo_id == base_repo_id), default=0)
        pull = EmuPull(number, base.id, head.id, head_ref, sha, base.default_branch, author)
        emu.pulls[(base.id, number)] = pull
    _set_head(emu, base, head, number, sha)
    return pull


def push_pull(emu: GitHubEmulator, pull: EmuPull, sha: str) -> None:
    with emu._lock:
        base, head = emu.repos[pull.base_repo_id], emu.repos[pull.head_repo_id]
        pull.head_sha = sha
    _set_head(emu, base, head, pull.number, sha)


def pull_payload(
    emu: GitHubEmulator, pull: EmuPull, action: str, sender: str, label: str | None = None
) -> dict[str, Any]:
    """The `pull_request` event of a pull request as it stands."""
    with emu._lock:
        base, head = emu.repos[pull.base_repo_id], emu.repos.get(pull.head_repo_id)
    head_repo = repo_json(emu, head) if head is not None else None
    if head_repo is not None:
        head_repo["fork"] = head.id != base.id if head else False
    body = {
        "url": f"{emu.api_url}/repos/{base.full_name}/pulls/{pull.number}",
        "number": pull.number,
        "state": pull.state,
        "title": f"Pull request {pull.number}",
        "user": {"login": pull.author, "id": 7},
        "created_at": iso(pull.created_at),
        "updated_at": iso(datetime.now(UTC)),
        "merged": pull.merged,
        "labels": [{"name": name} for name in pull.labels],
        "author_association": association(emu, base, pull.author),
        "head": {
            "label": f"{head.owner if head else 'unknown'}:{pull.head_ref}",
            "ref": pull.head_ref,
            "sha": pull.head_sha,
            "repo": head_repo,
        },
        "base": {
            "label": f"{base.owner}:{pull.base_ref}",
            "ref": pull.base_ref,
            "sha": _branch_sha(base, pull.base_ref),
            "repo": repo_json(emu, base),
        },
    }
    payload: dict[str, Any] = {
        "action": action,
        "number": pull.number,
        "pull_request": body,
        "repository": repo_json(emu, base),
        "installation": {"id": base.installation_id},
        "sender": {"login": sender, "id": 8},
    }
    if label is not None:
        payload["label"] = {"name": label, "color": "ededed"}
    return payload


def _branch_sha(repo: EmuRepo, branch: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo.path), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "0" * 40


def send_pull(emu: GitHubEmulator, pull: EmuPull, action: str, sender: str, label: str | None = None) -> EmuDelivery:
    base = emu.repos[pull.base_repo_id]
    payload = pull_payload(emu, pull, action, sender, label)
    return emu.send_event("pull_request", payload, installation_id=base.installation_id, repository_id=base.id)


def collaborator_permission(
    emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str, user: str
) -> Response:
    """`GET /repos/{owner}/{repo}/collaborators/{user}/permission`."""
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    with emu._lock:
        permission = emu.collaborators.get((repo.id, user.lower()))
        member = user.lower() in emu.members.get(repo.owner.lower(), set())
    if user.lower() == repo.owner.lower() or member:
        permission = "admin"
    permission = permission or "none"
    role = {"admin": "admin", "maintain": "maintain", "write": "write", "read": "read"}.get(permission, "none")
    body = {"permission": "write" if role == "maintain" else role, "role_name": role, "user": {"login": user}}
    return answer(emu.rate_limit, body)
