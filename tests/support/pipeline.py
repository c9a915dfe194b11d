"""The build job end to end in this process: signed pushes through the real API, the product's resources, the queue
drained on a Dagster instance, and runs on a thread for tests that act while a build runs."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dagster as dg
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.builders.fake import FakeBuilder
from starforge_dag.builders.port import CancelCheck, ProgressSink, never
from starforge_dag.core.models import BuildResult, BuildTicket
from starforge_dag.definitions import resources_for
from starforge_dag.dev.runner import drain_queue, tick_queue_sensor
from starforge_dag.jobs import build_job
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.settings import Settings, get_settings
from support.deliveries import WEBHOOK_SECRET, GitHub

DOCKERFILE = 'FROM 127.0.0.1:5000/base/busybox:latest\nWORKDIR /app\nCOPY . /app\nRUN echo hello\nCMD ["sh"]\n'


def services_settings(home: Path, services: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings for builds on the shared BuildKit and registry, base images from it, pushes signed as tests sign."""
    return Settings(
        home=home,
        buildkit_addr=services["STARFORGE_BUILDKIT_ADDR"],
        registry=services["STARFORGE_REGISTRY"],
        builder_image=services["STARFORGE_BASE_IMAGE"],
        runtime_image=services["STARFORGE_BASE_IMAGE"],
        github_webhook_secret=WEBHOOK_SECRET,
        git_allowed_schemes="file",
        **overrides,
    )


@dataclass(frozen=True)
class Pipeline:
    """What every end-to-end test repeats: the settings' resources, a signed push, the queue drained on `instance`."""

    settings: Settings
    instance: dg.DagsterInstance

    def using(self, settings: Settings) -> Pipeline:
        """The same instance under other settings (a stricter git policy, another backend)."""
        return replace(self, settings=settings)

    def resources(self, **replaced: Any) -> dict[str, Any]:
        """The product's resources for the settings, with the given keys replaced (a scripted fake backend...)."""
        return {**resources_for(self.settings), **replaced}

    def push(self, repo_url: str, full_name: str, sha: str, delivery: str | None = None) -> dict[str, Any]:
        """Deliver a signed GitHub push webhook through the real API app; its accepted answer."""
        with TestClient(create_app(self.settings)) as client:
            github = GitHub(client, self.settings.github_webhook_secret.get_secret_value())
            commit = github.commit("change", added=("x",), modified=(), sha=sha)
            answer = github.deliver(github.push(commit, full_name=full_name, repo_url=repo_url), delivery=delivery)
        assert answer.status_code == 202, answer.text
        return answer.json()

    def tick(self, resources: Mapping[str, Any] | None = None) -> dg.SensorResult | dg.SkipReason:
        """One tick of the sensor that claims queued builds."""
        return tick_queue_sensor(self.instance, self.resources() if resources is None else resources)

    def drain(self, resources: Mapping[str, Any] | None = None) -> list[dg.ExecuteInProcessResult]:
        """Every queued build run in this process until the queue is empty, as the daemon would run them."""
        return drain_queue(self.instance, self.resources() if resources is None else resources)


def watched_fake_backend(**fake: Any) -> tuple[FakeBuildService, threading.Event]:
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

    def __init__(self, request: dg.RunRequest, instance: dg.DagsterInstance, resources: Mapping[str, Any]) -> None:
        self.result: dg.ExecuteInProcessResult | None = None

        def run() -> None:
            self.result = build_job.execute_in_process(
                run_config=request.run_config,
                tags=request.tags,
                instance=instance,
                resources=dict(resources),
                raise_on_error=False,
            )

        self._thread = threading.Thread(target=run, name="build-run")
        self._thread.start()

    def join(self, timeout: float = 60.0) -> dg.ExecuteInProcessResult:
        self._thread.join(timeout)
        assert self.result is not None, "the run did not finish in time"
        return self.result


def environment_build_job() -> dg.JobDefinition:
    """build_job with the resources the environment picks, as a code location loads it (for `reconstructable`)."""
    return dg.Definitions(jobs=[build_job], resources=resources_for(get_settings())).resolve_job_def("build_job")
