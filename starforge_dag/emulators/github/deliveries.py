"""App webhooks: signed like GitHub's, dropped at a chosen rate, listed and redelivered through the App API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from ...github.signature import sign
from .answers import Answer, answer, per_page
from .auth import require_jwt
from .records import EmuDelivery, EmuRepo, iso
from .repos import git, repo_json

if TYPE_CHECKING:
    from .emulator import GitHubEmulator


def send_event(
    emu: GitHubEmulator, event: str, payload: dict[str, Any], *, installation_id: int | None, repository_id: int | None
) -> EmuDelivery:
    """Deliver a signed App webhook, or drop it (a failed delivery) with probability `drop_fraction`."""
    delivery = EmuDelivery(
        id=emu._next_id(),
        guid=str(uuid.uuid4()),
        event=event,
        action=payload.get("action"),
        body=json.dumps(payload).encode(),
        installation_id=installation_id,
        repository_id=repository_id,
        redelivery=False,
        delivered_at=datetime.now(UTC),
    )
    _dispatch(emu, delivery, may_drop=True)
    return delivery


def _dispatch(emu: GitHubEmulator, delivery: EmuDelivery, *, may_drop: bool) -> None:
    """Record a delivery attempt, then drop it at `drop_fraction` (where it may be dropped) or send it."""
    with emu._lock:
        emu.deliveries.append(delivery)
        dropped = may_drop and emu._drops.random() < emu.drop_fraction
    if dropped:
        delivery.status_code, delivery.status = 0, "failed to connect to host"
    else:
        _deliver(emu, delivery)


def _deliver(emu: GitHubEmulator, delivery: EmuDelivery) -> None:
    if not emu.webhook_url:
        delivery.status_code, delivery.status = 0, "no webhook URL configured"
        return
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/emulator",
        "X-GitHub-Event": delivery.event,
        "X-GitHub-Delivery": delivery.guid,
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(emu.app_id),
    }
    if emu.webhook_secret:
        headers["X-Hub-Signature-256"] = sign(emu.webhook_secret.encode(), delivery.body)
    try:
        response = httpx.post(emu.webhook_url, content=delivery.body, headers=headers, timeout=10)
        delivery.status_code = response.status_code
        delivery.status = "OK" if response.is_success else f"Invalid HTTP Response: {response.status_code}"
    except httpx.HTTPError as exc:
        delivery.status_code, delivery.status = 0, f"failed: {type(exc).__name__}"


def push_payload(emu: GitHubEmulator, repo: EmuRepo, branch: str, before: str, after: str) -> dict[str, Any]:
    """The `push` event of a push that already happened in the repository (before → after)."""
    commits = _commits(repo.path, before, after)
    head = commits[-1] if commits else {"id": after, "message": "", "timestamp": iso(datetime.now(UTC))}
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": set(before) == {"0"},
        "deleted": False,
        "forced": False,
        "repository": repo_json(emu, repo),
        "installation": {"id": repo.installation_id},
        "head_commit": head,
        "commits": commits,
        "pusher": {"name": repo.owner, "email": None},
        "sender": {"login": repo.owner, "id": 1},
    }


def _commits(path: Path, before: str, after: str) -> list[dict[str, Any]]:
    """The pushed commits, oldest first, as the push payload lists them."""
    span = after if set(before) == {"0"} else f"{before}..{after}"
    out = git(path, "log", "--reverse", "--max-count=20", "--format=%H%x00%cI%x00%B%x1e", span)
    commits = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, stamp, message = record.split("\x00", 2)
        changed = git(path, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha).split()
        commits.append(
            {"id": sha, "message": message.strip(), "timestamp": stamp, "added": [], "modified": changed, "removed": []}
        )
    return commits


def _delivery_json(d: EmuDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": iso(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": 0.01,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
    }


def list_deliveries(emu: GitHubEmulator, request: Request, _payload: Any) -> Response:
    require_jwt(emu, request)
    size = per_page(request)
    cursor = int(request.query_params.get("cursor", "0") or 0)
    with emu._lock:
        items = sorted(emu.deliveries, key=lambda d: d.id, reverse=True)
    items = [d for d in items if not cursor or d.id < cursor]
    shown = items[:size]
    headers = {}
    if len(items) > size:
        headers["link"] = f'<{emu.api_url}/app/hook/deliveries?per_page={size}&cursor={shown[-1].id}>; rel="next"'
    return answer(emu.rate_limit, [_delivery_json(d) for d in shown], headers=headers)


def redeliver(emu: GitHubEmulator, request: Request, _payload: Any, delivery_id: str) -> Response:
    require_jwt(emu, request)
    with emu._lock:
        original = next((d for d in emu.deliveries if d.id == int(delivery_id)), None)
    if original is None:
        raise Answer(404, "Not Found")
    again = EmuDelivery(
        id=emu._next_id(),
        guid=original.guid,
        event=original.event,
        action=original.action,
        body=original.body,
        installation_id=original.installation_id,
        repository_id=original.repository_id,
        redelivery=True,
        delivered_at=datetime.now(UTC),
    )
    _dispatch(emu, again, may_drop=emu.drop_redeliveries)
    return answer(emu.rate_limit, {}, 202)
