"""Deployments and their statuses, validated as GitHub does and recorded for tests to read.

`auto_inactive` (on unless a status says false) does what GitHub documents: a `success` status adds an
`inactive` status to the earlier deployments of the same repository and environment that are neither transient
nor production and whose latest status is `success`. Production and transient (preview) deployments are left
to their sender.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer, answer, page
from .auth import require_token
from .records import EmuDeployment, EmuRepo, RecordedDeploymentStatus, iso
from .repos import git, repo_by_name

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
_SHA = re.compile(r"[0-9a-f]{40}")


def _resolve(repo: EmuRepo, ref: str) -> str | None:
    """The commit a ref names: a full commit id, a branch or a tag."""
    if _SHA.fullmatch(ref):
        return ref if git(repo.path, "cat-file", "-t", ref).strip() == "commit" else None
    if ref.startswith("-") or ".." in ref:
        return None
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
        sha = git(repo.path, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").strip()
        if sha:
            return sha
    return None


def _flag(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise Answer(422, f"Invalid request.\n\nFor '{name}', {json.dumps(value)[:40]} is not a boolean.")
    return value


def _text(payload: dict[str, Any], name: str, default: str | None, limit: int) -> str | None:
    value = payload.get(name, default)
    if value is not None and not isinstance(value, str):
        raise Answer(422, f"Invalid request.\n\nFor '{name}', {json.dumps(value)[:40]} is not a string.")
    if value is not None and len(value) > limit:
        raise Answer(422, f"Validation Failed: {name} is too long (maximum is {limit} characters)")
    return value


def deployment_json(emu: GitHubEmulator, repo: EmuRepo, d: EmuDeployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "sha": d.sha,
        "ref": d.ref,
        "task": d.task,
        "environment": d.environment,
        "original_environment": d.environment,
        "payload": d.payload,
        "description": d.description,
        "transient_environment": d.transient,
        "production_environment": d.production,
        "creator": {"login": "starforge[bot]", "type": "Bot"},
        "created_at": iso(d.at),
        "updated_at": iso(d.statuses[-1].at if d.statuses else d.at),
        "url": f"{emu.api_url}/repos/{repo.full_name}/deployments/{d.id}",
        "statuses_url": f"{emu.api_url}/repos/{repo.full_name}/deployments/{d.id}/statuses",
    }


def create_deployment(emu: GitHubEmulator, request: Request, payload: Any, owner: str, name: str) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    if not isinstance(payload, dict):
        raise Answer(422, "Invalid request.\n\nThe body is not an object.")
    ref = _text(payload, "ref", None, 255)
    if not ref:
        raise Answer(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
    environment = _text(payload, "environment", "production", 255) or "production"
    task = _text(payload, "task", "deploy", 255) or "deploy"
    description = _text(payload, "description", "", 140) or ""
    transient = _flag(payload, "transient_environment", False)
    production = _flag(payload, "production_environment", environment == "production")
    _flag(payload, "auto_merge", True)
    contexts = payload.get("required_contexts")
    if contexts is not None and not (isinstance(contexts, list) and all(isinstance(c, str) for c in contexts)):
        raise Answer(422, "Invalid request.\n\nFor 'required_contexts', it is not an array of strings.")
    body = payload.get("payload", {})
    if isinstance(body, str):
        try:
            body = json.loads(body) if body else {}
        except ValueError:
            raise Answer(422, "Invalid request.\n\nFor 'payload', it is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Answer(422, "Invalid request.\n\nFor 'payload', it is not an object or a JSON string.")
    sha = _resolve(repo, ref)
    if sha is None:
        raise Answer(422, f"No ref found for: {ref[:100]}")
    deployment = EmuDeployment(
        emu._next_id(),
        repo.id,
        sha,
        ref,
        task,
        environment,
        body,
        description,
        transient,
        production,
        datetime.now(UTC),
    )
    with emu._lock:
        emu.deployments[deployment.id] = deployment
    return answer(emu.rate_limit, deployment_json(emu, repo, deployment), 201)


def list_deployments(emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    query = request.query_params
    with emu._lock:
        found = [
            d
            for d in emu.deployments.values()
            if d.repo_id == repo.id
            and all(
                query.get(key) in (None, value)
                for key, value in (("sha", d.sha), ("ref", d.ref), ("task", d.task), ("environment", d.environment))
            )
        ]
        items = [deployment_json(emu, repo, d) for d in sorted(found, key=lambda d: d.id, reverse=True)]
    return answer(emu.rate_limit, page(request, items))


def _deployment(emu: GitHubEmulator, repo: EmuRepo, deployment_id: str) -> EmuDeployment:
    with emu._lock:
        found = emu.deployments.get(int(deployment_id))
    if found is None or found.repo_id != repo.id:
        raise Answer(404, "Not Found")
    return found


def _status_json(d: EmuDeployment, number: int, s: RecordedDeploymentStatus) -> dict[str, Any]:
    return {
        "id": d.id * 1000 + number,
        "state": s.state,
        "description": s.description,
        "environment": d.environment,
        "log_url": s.log_url or "",
        "target_url": s.log_url or "",
        "environment_url": s.environment_url or "",
        "created_at": iso(s.at),
        "updated_at": iso(s.at),
    }


def create_deployment_status(
    emu: GitHubEmulator, request: Request, payload: Any, owner: str, name: str, deployment_id: str
) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    deployment = _deployment(emu, repo, deployment_id)
    if not isinstance(payload, dict) or payload.get("state") not in STATES:
        raise Answer(422, "Validation Failed: state is not included in the list")
    description = _text(payload, "description", "", 140) or ""
    log_url = _text(payload, "log_url", None, 2000) or _text(payload, "target_url", None, 2000)
    environment_url = _text(payload, "environment_url", None, 2000)
    auto_inactive = _flag(payload, "auto_inactive", True)
    now = datetime.now(UTC)
    status = RecordedDeploymentStatus(payload["state"], description, log_url, environment_url, now)
    with emu._lock:
        if status.state == "success" and auto_inactive:
            for other in emu.deployments.values():
                earlier = other.repo_id == repo.id and other.id < deployment.id
                replaced = earlier and other.environment == deployment.environment and other.state == "success"
                if replaced and not other.transient and not other.production:
                    other.statuses.append(RecordedDeploymentStatus("inactive", "", None, None, now))
        deployment.statuses.append(status)
        body = _status_json(deployment, len(deployment.statuses), status)
    return answer(emu.rate_limit, body, 201)


def list_deployment_statuses(
    emu: GitHubEmulator, request: Request, _payload: Any, owner: str, name: str, deployment_id: str
) -> Response:
    repo = repo_by_name(emu, require_token(emu, request), owner, name)
    deployment = _deployment(emu, repo, deployment_id)
    with emu._lock:
        items = [_status_json(deployment, n, s) for n, s in enumerate(deployment.statuses, 1)]
    return answer(emu.rate_limit, page(request, list(reversed(items))))
