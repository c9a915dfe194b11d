"""Check suites per commit: scripted by tests (created, then completed with a conclusion), listed by the checks API,
and told of in signed `check_suite` deliveries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer, answer, page
from .auth import require_token
from .records import EmuDelivery, iso
from .repos import git, repo_by_name, repo_json

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

ACTIONS_APP = (15368, "github-actions", "GitHub Actions")  # the App GitHub Actions' suites belong to


@dataclass
class EmuCheckSuite:
    id: int
    repo_id: int
    head_sha: str
    head_branch: str | None
    app_id: int
    app_slug: str
    app_name: str
    status: str = "queued"
    conclusion: str | None = None
    runs: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


def suite_json(suite: EmuCheckSuite) -> dict[str, Any]:
    return {
        "id": suite.id,
        "node_id": f"CS_{suite.id}",
        "head_branch": suite.head_branch,
        "head_sha": suite.head_sha,
        "status": suite.status,
        "conclusion": suite.conclusion,
        "app": {"id": suite.app_id, "slug": suite.app_slug, "name": suite.app_name, "owner": {"login": "github"}},
        "latest_check_runs_count": suite.runs,
        "created_at": iso(suite.created_at or datetime.now(UTC)),
        "updated_at": iso(suite.updated_at or datetime.now(UTC)),
        "rerequestable": True,
        "runs_rerequestable": True,
    }


def add_suite(
    emu: GitHubEmulator,
    repo_id: int,
    sha: str,
    *,
    app: tuple[int, str, str] = ACTIONS_APP,
    branch: str | None = "main",
    status: str = "queued",
) -> EmuCheckSuite:
    now = datetime.now(UTC)
    suite = EmuCheckSuite(emu._next_id(), repo_id, sha, branch, *app, status=status, created_at=now, updated_at=now)
    with emu._lock:
        emu.check_suites.append(suite)
    return suite


def complete_suite(
    emu: GitHubEmulator, suite: EmuCheckSuite, conclusion: str, *, send: bool = True
) -> EmuDelivery | None:
    """Complete the suite; with `send`, deliver the `check_suite` completed event (dropped at `drop_fraction`)."""
    with emu._lock:
        suite.status, suite.conclusion, suite.updated_at = "completed", conclusion, datetime.now(UTC)
    return send_suite_event(emu, suite, "completed") if send else None


def suite_payload(emu: GitHubEmulator, suite: EmuCheckSuite, action: str) -> dict[str, Any]:
    repo = emu.repos[suite.repo_id]
    return {
        "action": action,
        "check_suite": suite_json(suite),
        "repository": repo_json(emu, repo),
        "installation": {"id": repo.installation_id},
        "sender": {"login": repo.owner, "id": 1},
    }


def send_suite_event(emu: GitHubEmulator, suite: EmuCheckSuite, action: str) -> EmuDelivery:
    repo = emu.repos[suite.repo_id]
    payload = suite_payload(emu, suite, action)
    return emu.send_event("check_suite", payload, installation_id=repo.installation_id, repository_id=repo.id)


def list_check_suites(
    emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str, ref: str
) -> Response:
    """`GET /repos/{owner}/{repo}/commits/{ref}/check-suites`: a commit id, or a branch resolved to its head."""
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    sha = ref if re.fullmatch(r"[0-9a-f]{40}", ref) else ""
    if not sha:
        sha = git(repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}^{{commit}}").strip()
    if not sha or git(repo.path, "cat-file", "-t", sha).strip() != "commit":
        raise Answer(422, f"No commit found for SHA: {ref}")
    with emu._lock:
        suites = [suite_json(s) for s in emu.check_suites if s.repo_id == repo.id and s.head_sha == sha]
    return answer(emu.rate_limit, {"total_count": len(suites), "check_suites": page(request, suites)})
