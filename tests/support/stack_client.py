"""Drive a running Stack from outside, as GitHub and a user would: signed pushes, then watching the build."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import httpx

from starforge_dag.dev.stack import Stack, StackError
from support.deliveries import GitHub

POLL_S = 0.25


def post_push(
    stack: Stack, repo_url: str, full_name: str, sha: str, delivery_id: str | None = None, branch: str = "main"
) -> httpx.Response:
    """Deliver a push of one commit, signed with the stack's webhook secret, over real HTTP as GitHub would."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        github = GitHub(client, stack.webhook_secret)
        payload = github.push(
            github.commit(sha=sha), full_name=full_name, ref=f"refs/heads/{branch}", repo_url=repo_url
        )
        return github.deliver(payload, delivery=delivery_id)


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
