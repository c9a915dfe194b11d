"""Signed GitHub deliveries for tests: push payloads shaped like github.com's, signed as GitHub signs them."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from starforge_dag.github.signature import sign

WEBHOOK_SECRET = "webhook-secret-for-tests"
ZERO = "0" * 40
FORM = "application/x-www-form-urlencoded"


class GitHub:
    """Builds push payloads and posts them to `/webhooks/github` of `client`, signed over the raw body."""

    def __init__(self, client: httpx.Client, secret: str = WEBHOOK_SECRET):
        self.client = client
        self.secret = secret

    @staticmethod
    def sha(seed: str) -> str:
        return hashlib.sha1(seed.encode()).hexdigest()

    def commit(
        self, message: str = "Update app", *, added=(), modified=("app.py",), removed=(), sha: str | None = None
    ) -> dict[str, Any]:
        """One entry of a push payload's `commits`."""
        cid = sha or self.sha(message + repr((added, modified, removed)))
        return {
            "id": cid,
            "tree_id": self.sha("tree" + cid),
            "distinct": True,
            "message": message,
            "timestamp": "2026-11-27T09:15:02+01:00",
            "url": f"https://github.com/acme/shop/commit/{cid}",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": list(added),
            "removed": list(removed),
            "modified": list(modified),
        }

    def push(
        self,
        *commits: dict[str, Any],
        full_name: str = "acme/shop",
        ref: str = "refs/heads/main",
        deleted: bool = False,
        repo_url: str | None = None,
    ) -> dict[str, Any]:
        """A push delivery body; `after` is the last commit, as GitHub sends it; `repo_url` replaces the clone URLs."""
        listed = [] if deleted else (list(commits) or [self.commit()])
        head = listed[-1] if listed else None
        after = head["id"] if head else ZERO
        owner, _, name = full_name.partition("/")
        return {
            "ref": ref,
            "before": self.sha("before" + after),
            "after": after,
            "repository": {
                "id": 123456789,
                "node_id": "R_kgDOabc",
                "name": name,
                "full_name": full_name,
                "private": True,
                "owner": {"name": owner, "login": owner, "id": 42, "type": "Organization"},
                "html_url": repo_url or f"https://github.com/{full_name}",
                "clone_url": repo_url or f"https://github.com/{full_name}.git",
                "ssh_url": f"git@github.com:{full_name}.git",
                "git_url": f"git://github.com/{full_name}.git",
                "default_branch": "main",
            },
            "pusher": {"name": "ada", "email": "ada@example.com"},
            "sender": {"login": "ada", "id": 7, "type": "User"},
            "created": False,
            "deleted": deleted,
            "forced": False,
            "base_ref": None,
            "compare": f"https://github.com/{full_name}/compare/{self.sha('b')[:12]}...{after[:12]}",
            "commits": listed,
            "head_commit": head,
        }

    def pull_request(
        self,
        number: int = 1,
        sha: str | None = None,
        *,
        action: str = "opened",
        full_name: str = "acme/shop",
        repo_id: int = 123456789,
        head_repo_id: int | None = 123456789,
        head_full_name: str | None = None,
        association: str = "MEMBER",
        author: str = "ada",
        label: str | None = None,
        merged: bool = False,
    ) -> dict[str, Any]:
        """A pull_request delivery body shaped like github.com's; the head repository is the base one by default."""
        head_sha = sha or self.sha(f"pr-{number}")
        owner, _, name = full_name.partition("/")
        base_repo = {"id": repo_id, "name": name, "full_name": full_name, "private": True, "fork": False}
        head_repo = None
        if head_repo_id is not None:
            head_repo = {"id": head_repo_id, "full_name": head_full_name or full_name, "fork": head_repo_id != repo_id}
        payload: dict[str, Any] = {
            "action": action,
            "number": number,
            "pull_request": {
                "number": number,
                "state": "closed" if action == "closed" else "open",
                "merged": merged,
                "user": {"login": author, "id": 9},
                "author_association": association,
                "head": {"ref": "feature", "sha": head_sha, "repo": head_repo},
                "base": {"ref": "main", "sha": self.sha("base"), "repo": base_repo},
            },
            "repository": {
                **base_repo,
                "owner": {"login": owner, "id": 42},
                "html_url": f"https://github.com/{full_name}",
                "clone_url": f"https://github.com/{full_name}.git",
            },
            "sender": {"login": author, "id": 9},
        }
        if label is not None:
            payload["label"] = {"name": label}
        return payload

    def encode(self, payload: Any, *, form: bool = False) -> bytes:
        """The raw body GitHub would send: JSON, or `payload=<json>` form-encoded."""
        text = json.dumps(payload)
        return urlencode({"payload": text}).encode() if form else text.encode()

    def headers(
        self,
        raw: bytes,
        *,
        event: str = "push",
        delivery: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
        content_type: str | None = "application/json",
    ) -> dict[str, str]:
        """GitHub's delivery headers; `signature=""` leaves the signature out, any other value replaces it."""
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()) if delivery is None else delivery,
            "User-Agent": "GitHub-Hookshot/044aadd",
        }
        if content_type is not None:
            headers["Content-Type"] = content_type
        if signature is None:
            signature = sign((self.secret if secret is None else secret).encode(), raw)
        if signature:
            headers["X-Hub-Signature-256"] = signature
        return headers

    def deliver(
        self,
        payload: Any = None,
        *,
        event: str = "push",
        delivery: str | None = None,
        secret: str | None = None,
        body: bytes | None = None,
        form: bool = False,
        signature: str | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        """POST a delivery signed over its raw body with HMAC-SHA256 (JSON, or form-encoded with `form=True`)."""
        raw = body if body is not None else self.encode(payload, form=form)
        kind = content_type or (FORM if form else "application/json")
        headers = self.headers(
            raw, event=event, delivery=delivery, secret=secret, signature=signature, content_type=kind
        )
        return self.client.post("/webhooks/github", content=raw, headers=headers)
