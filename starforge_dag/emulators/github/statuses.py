"""Commit statuses: the one write an App makes, validated as GitHub does and recorded for tests to read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer, answer
from .auth import require_token
from .records import RecordedStatus, iso
from .repos import git, repo_by_name

if TYPE_CHECKING:
    from .emulator import GitHubEmulator


def create_status(emu: GitHubEmulator, request: Request, payload: Any, owner: str, name: str, sha: str) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    if not isinstance(payload, dict) or payload.get("state") not in ("error", "failure", "pending", "success"):
        raise Answer(422, "Validation Failed: state is not included in the list")
    if not re.fullmatch(r"[0-9a-f]{40}", sha) or not git(repo.path, "cat-file", "-t", sha).strip() == "commit":
        raise Answer(422, f"No commit found for SHA: {sha}")
    status = RecordedStatus(
        repo.id,
        sha,
        payload["state"],
        str(payload.get("description") or "")[:140],
        payload.get("target_url"),
        str(payload.get("context") or "default"),
        datetime.now(UTC),
    )
    with emu._lock:
        emu.statuses.append(status)
        number = len(emu.statuses)
    return answer(
        emu.rate_limit,
        {
            "id": number,
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": iso(status.at),
            "updated_at": iso(status.at),
        },
        201,
    )
