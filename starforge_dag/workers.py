"""Celery run workers: Dagster's CeleryRunLauncher hands each build run to a warm worker on any host."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import dagster as dg
from celery import Celery
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

# Seconds a run's worker may stay silent before its run is failed (a broker restart silences every worker briefly).
SILENCE_TOLERATED_S = 15.0
PING_TIMEOUT_S = 1.0
PING_ATTEMPTS = 3
VISIBILITY_MARGIN_S = 60


class WorkerConfigError(RuntimeError):
    """DAGSTER_HOME does not describe Celery run workers Starforge can rely on; the message says what to change."""


class WorkerWatchingCeleryRunLauncher(CeleryRunLauncher):
    """Dagster's Celery launcher; its health check also fails a run whose whole worker is gone, not just its task.

    Celery records a task's failure only while its worker lives: a worker killed with its runs leaves them STARTED
    forever (Redis hands the message on only after the visibility timeout, longer than any build).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._silent_since: dict[str, float] = {}

    def terminate(self, run_id: str) -> bool:
        """Mark the run canceling before its process is signalled, as Dagster's default launcher does.

        Dagster's Celery launcher only revokes the task: its run then reads as a crash (FAILURE), not a cancel.
        """
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if run.status != dg.DagsterRunStatus.CANCELING:
            self._instance.report_run_canceling(run)
        return super().terminate(run_id)

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        checked = super().check_run_worker_health(run)
        if checked.status != WorkerStatus.RUNNING:
            self._silent_since.pop(run.run_id, None)
            return checked
        info = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG]).info
        hostname = info.get("hostname") if isinstance(info, dict) else None
        if not hostname or self._answers(hostname):
            self._silent_since.pop(run.run_id, None)
            return checked
        now = time.monotonic()
        silent_since = self._silent_since.setdefault(run.run_id, now)
        if now - silent_since < SILENCE_TOLERATED_S:
            return checked
        self._silent_since.pop(run.run_id, None)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"Celery worker {hostname} running this build no longer answers: it was lost"
        )

    def _answers(self, hostname: str) -> bool:
        for _ in range(PING_ATTEMPTS):
            if self.celery.control.ping(destination=[hostname], timeout=PING_TIMEOUT_S):
                return True
        return False


def worker_app(instance: dg.DagsterInstance) -> Celery:
    """The instance's own Celery app (same broker, backend and settings as the daemon's launcher) with the run tasks."""
    launcher = instance.run_launcher
    if not isinstance(launcher, CeleryRunLauncher):
        raise WorkerConfigError(
            f"DAGSTER_HOME ({instance.root_directory}) launches runs with {type(launcher).__name__}, not Celery: "
            "prepare it from deploy/dagster-celery.yaml (`starforge dagster-home --celery`)"
        )
    create_execute_job_task(launcher.celery)
    create_resume_job_task(launcher.celery)
    return launcher.celery


def check_visibility_timeout(app: Celery, build_timeout_s: int) -> None:
    """Redis re-delivers a message not acknowledged within the visibility timeout: a longer build would run twice."""
    visibility = float((app.conf.broker_transport_options or {}).get("visibility_timeout", 3600))
    if visibility < build_timeout_s + VISIBILITY_MARGIN_S:
        raise WorkerConfigError(
            f"the broker's visibility_timeout ({visibility:g}s) must exceed the build timeout ({build_timeout_s}s) "
            f"by {VISIBILITY_MARGIN_S}s: raise broker_transport_options.visibility_timeout in dagster.yaml"
        )


def worker_argv(concurrency: int, hostname: str | None, queue: str) -> list[str]:
    """`celery worker` arguments: one process per run, forked fresh from the warm worker for every run."""
    return [
        "worker",
        f"--concurrency={concurrency}",
        f"--hostname={hostname or f'starforge-{uuid.uuid4().hex[:6]}@%h'}",
        f"--queues={queue}",
        "--pool=prefork",
        "--prefetch-multiplier=1",
        "--max-tasks-per-child=1",
        "--loglevel=INFO",
    ]


def run_worker(concurrency: int, hostname: str | None, build_timeout_s: int, extra: Sequence[str] = ()) -> None:
    """Serve build runs until stopped; Dagster and the code location are imported before the first run."""
    with dg.DagsterInstance.get() as instance:
        app = worker_app(instance)
        queue = instance.run_launcher.default_queue  # type: ignore[attr-defined]
    check_visibility_timeout(app, build_timeout_s)
    app.loader.import_default_modules()
    app.worker_main([*worker_argv(concurrency, hostname, queue), *extra])
