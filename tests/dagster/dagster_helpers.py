"""Helpers for the in-process Dagster tests: a sample Dockerfile, a signed push, runs on a thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from deliveries import GitHub
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.builders.fake import FakeBuilder
from starforge_dag.builders.port import CancelCheck, ProgressSink, never
from starforge_dag.core.models import BuildResult, BuildTicket
from starforge_dag.jobs import build_job
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.settings import Settings

SECRET = "webhook-secret-for-dagster-tests"
DOCKERFILE = 'FROM 127.0.0.1:5000/base/busybox:latest\nWORKDIR /app\nCOPY . /app\nRUN echo hello\nCMD ["sh"]\n'


def services_settings(home: Path, services: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings for builds on the shared BuildKit and registry, base images from it, pushes signed with SECRET."""
    return Settings(
        home=home,
        buildkit_addr=services["STARFORGE_BUILDKIT_ADDR"],
        registry=services["STARFORGE_REGISTRY"],
        builder_image=services["STARFORGE_BASE_IMAGE"],
        runtime_image=services["STARFORGE_BASE_IMAGE"],
        github_webhook_secret=SECRET,
        git_allowed_schemes="file",
        **overrides,
    )


def push(settings: Settings, repo_url: str, full_name: str, sha: str, delivery: str | None = None) -> dict:
    """Deliver a signed GitHub push webhook through the real API app."""
    with TestClient(create_app(settings)) as client:
        github = GitHub(client, SECRET)
        commit = github.commit("change", added=("x",), modified=(), sha=sha)
        answer = github.deliver(github.push(commit, full_name=full_name, repo_url=repo_url), delivery=delivery)
    assert answer.status_code == 202, answer.text
    return answer.json()


def watched_fake_backend(**fake) -> tuple[FakeBuildService, threading.Event]:
    """The fake backend, plus an event set when a build starts running on it (tests wait on it, not on sleeps)."""
    started = threading.Event()

    class WatchedFakeBuilder(FakeBuilder):
        def run(
            self,
            ticket: BuildTicket,
            on_progress: ProgressSink,
            should_cancel: CancelCheck = never,
            secrets: Mapping[str, str] | None = None,
        ) -> BuildResult:
            started.set()
            return super().run(ticket, on_progress, should_cancel, secrets)

    class WatchedFakeBuildService(FakeBuildService):
        def builder(self) -> FakeBuilder:
            return WatchedFakeBuilder(super().builder().options)

    return WatchedFakeBuildService(**fake), started


class RunInThread:
    """Execute one requested run of build_job on a thread; `result` once `join` returns."""

    def __init__(self, request: dg.RunRequest, instance: dg.DagsterInstance, resources: dict) -> None:
        self.result: dg.ExecuteInProcessResult | None = None

        def run() -> None:
            self.result = build_job.execute_in_process(
                run_config=request.run_config,
                tags=request.tags,
                instance=instance,
                resources=resources,
                raise_on_error=False,
            )

        self._thread = threading.Thread(target=run, name="build-run")
        self._thread.start()

    def join(self, timeout: float = 60.0) -> dg.ExecuteInProcessResult:
        self._thread.join(timeout)
        assert self.result is not None, "the run did not finish in time"
        return self.result
