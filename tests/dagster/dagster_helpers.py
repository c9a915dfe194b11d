"""Helpers for the in-process Dagster tests: a sample Dockerfile and a signed push through the API."""

from __future__ import annotations

import json
import uuid

from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.github.signature import sign
from starforge_dag.settings import Settings

SECRET = "webhook-secret-for-dagster-tests"
DOCKERFILE = 'FROM 127.0.0.1:5000/base/busybox:latest\nWORKDIR /app\nCOPY . /app\nRUN echo hello\nCMD ["sh"]\n'


def push(settings: Settings, repo_url: str, full_name: str, sha: str, delivery: str | None = None) -> dict:
    """Deliver a signed GitHub push webhook through the real API app."""
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "created": False,
            "deleted": False,
            "repository": {"full_name": full_name, "clone_url": repo_url, "html_url": repo_url},
            "head_commit": {"id": sha, "message": "change", "added": ["x"], "modified": [], "removed": []},
            "commits": [{"id": sha, "message": "change", "added": ["x"], "modified": [], "removed": []}],
            "pusher": {"name": "dev"},
        }
    ).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET.encode(), body),
        "Content-Type": "application/json",
    }
    with TestClient(create_app(settings)) as client:
        answer = client.post("/webhooks/github", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()
