"""Drive a running Stack from outside, as GitHub and a user would: signed pushes, then watching the build."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection
from typing import Any

import httpx

from starforge_dag.github.signature import sign
from starforge_dag.stack import Stack, StackError

POLL_S = 0.25


def push_payload(
    repo_url: str, full_name: str, sha: str, branch: str = "main", message: str = "Update app"
) -> dict[str, Any]:
    """The fields of a GitHub push delivery that the webhook reads, for one commit on `branch`."""
    commit = {"id": sha, "message": message, "added": [], "modified": ["app.py"], "removed": []}
    return {
        "ref": f"refs/heads/{branch}",
        "before": "0" * 40,
        "after": sha,
        "repository": {"full_name": full_name, "clone_url": repo_url, "html_url": repo_url},
        "head_commit": commit,
        "commits": [commit],
        "pusher": {"name": "starforge-stack"},
    }


def post_push(
    stack: Stack, repo_url: str, full_name: str, sha: str, delivery_id: str | None = None, branch: str = "main"
) -> httpx.Response:
    """Deliver a push signed with the stack's webhook secret, as GitHub would."""
    body = json.dumps(push_payload(repo_url, full_name, sha, branch)).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(stack.webhook_secret.encode(), body),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{stack.api_url}/webhooks/github", content=body, headers=headers, timeout=30)


def wait_for_build(stack: Stack, build_id: int, states: Collection[str], timeout: float = 180.0) -> dict[str, Any]:
    """The build (as GET /builds/{id} shows it) once its status is one of `states`; on timeout, what it did instead."""
    deadline = time.monotonic() + timeout
    build: dict[str, Any] = {}
    with stack.api() as client:
        while time.monotonic() < deadline:
            response = client.get(f"/builds/{build_id}")
            response.raise_for_status()
            build = response.json()
            if build["status"] in states:
                return build
            time.sleep(POLL_S)
    phases = "\n".join(f"  {p['state']:<10} {p['reason']} ({p['actor']})" for p in build.get("phases", []))
    raise StackError(
        f"build {build_id} is {build.get('status')} (error: {build.get('error')}), not in {sorted(states)} "
        f"after {timeout:g}s; phases:\n{phases}\n{stack.log_tails()}"
    )
