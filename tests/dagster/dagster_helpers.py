"""Helpers for the in-process Dagster tests: a sample Dockerfile and a signed push through the API."""

from __future__ import annotations

from deliveries import GitHub
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.settings import Settings

SECRET = "webhook-secret-for-dagster-tests"
DOCKERFILE = 'FROM 127.0.0.1:5000/base/busybox:latest\nWORKDIR /app\nCOPY . /app\nRUN echo hello\nCMD ["sh"]\n'


def push(settings: Settings, repo_url: str, full_name: str, sha: str, delivery: str | None = None) -> dict:
    """Deliver a signed GitHub push webhook through the real API app."""
    with TestClient(create_app(settings)) as client:
        github = GitHub(client, SECRET)
        commit = github.commit("change", added=("x",), modified=(), sha=sha)
        answer = github.deliver(github.push(commit, full_name=full_name, repo_url=repo_url), delivery=delivery)
    assert answer.status_code == 202, answer.text
    return answer.json()
