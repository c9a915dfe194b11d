"""Repositories as the REST API shows them to an installation: lookups, JSON shapes, repo and branch endpoints."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer, answer, page
from .auth import installation_json, require_jwt, require_token
from .records import EmuInstallation, EmuRepo

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

GIT_PREFIX = "/_git/"


def git(path: Path, *args: str) -> str:
    """A read-only git command's output in the served repository; "" when git fails."""
    done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def repo_by_name(emu: GitHubEmulator, inst: EmuInstallation | None, owner: str, name: str) -> EmuRepo:
    with emu._lock:
        for repo in emu.repos.values():
            same = repo.owner.lower() == owner.lower() and repo.name.lower() == name.lower()
            if same and (inst is None or repo.installation_id == inst.id):
                return repo
    raise Answer(404, "Not Found")


def repo_by_id(emu: GitHubEmulator, inst: EmuInstallation, repo_id: str) -> EmuRepo:
    with emu._lock:
        repo = emu.repos.get(int(repo_id))
    if repo is None or repo.installation_id != inst.id:
        raise Answer(404, "Not Found")
    return repo


def repo_brief(repo: EmuRepo) -> dict[str, Any]:
    return {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "private": repo.private}


def repo_json(emu: GitHubEmulator, repo: EmuRepo) -> dict[str, Any]:
    return {
        **repo_brief(repo),
        "node_id": base64.b64encode(f"R_{repo.id}".encode()).decode(),
        "owner": {"login": repo.owner, "id": 1, "type": "Organization"},
        "html_url": f"{emu.api_url}/{repo.full_name}",
        "url": f"{emu.api_url}/repos/{repo.full_name}",
        "clone_url": emu.clone_url(repo),
        "default_branch": repo.default_branch,
        "visibility": "private" if repo.private else "public",
        "archived": False,
        "fork": False,
    }


def repo_installation(emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str) -> Response:
    require_jwt(emu, request)
    repo = repo_by_name(emu, None, owner, name)
    with emu._lock:
        inst = emu.installations.get(repo.installation_id or -1)
    if inst is None:
        raise Answer(404, "Not Found")
    return answer(emu.rate_limit, installation_json(emu, inst))


def installation_repositories(emu: GitHubEmulator, request: Request, _payload: Any) -> Response:
    inst = require_token(emu, request)
    with emu._lock:
        repos = [repo_json(emu, r) for r in emu.repos.values() if r.installation_id == inst.id]
    body = {"total_count": len(repos), "repository_selection": "selected", "repositories": page(request, repos)}
    return answer(emu.rate_limit, body)


def get_repo(emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str) -> Response:
    return answer(emu.rate_limit, repo_json(emu, repo_by_name(emu, require_token(emu, request), owner, name)))


def get_repo_by_id(emu: GitHubEmulator, request: Request, _payload: Any, repo_id: str) -> Response:
    return answer(emu.rate_limit, repo_json(emu, repo_by_id(emu, require_token(emu, request), repo_id)))


def get_branch(emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str, branch: str) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    sha = git(repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").strip()
    if not sha:
        raise Answer(404, "Branch not found")
    commit = {"sha": sha, "url": f"{emu.api_url}/repos/{repo.full_name}/commits/{sha}"}
    return answer(emu.rate_limit, {"name": branch, "commit": commit, "protected": False})
