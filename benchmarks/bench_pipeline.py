"""Webhook accepted → run created → run started → build succeeded, p50/p95 over a burst of builds (fake backend).

Measured path: the Stack (API, dagster-daemon, dagster-webserver as processes; Dagster storage and build store on
Postgres); one signed push per app, all sent at once, then a few pushed one at a time (the latency of an idle
pipeline). Baseline in the same run: the same pushes through the same webhook code, drained in this process by
`starforge_dag.dev.runner.drain_queue` (one sensor tick, then `execute_in_process` per build, one after another) on the
same Postgres — what the daemon, the run queue (4 runs per workspace) and a process per run add or save. Times come
from the build store's transitions and Dagster's run records.

With `--workers N`, the same pushes go through a third Stack whose runs execute on N Celery run workers (a Redis of
its own); the Stack on Dagster's default launcher (a new process per run) is the baseline in the same run. The
workers' memory is sampled: idle, and at the peak of the burst.

Run: .venv/bin/python benchmarks/bench_pipeline.py [--builds 20] [--serial 5] [--serial-gap 5] [--workers N]
     [--postgres-admin-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psutil
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.definitions import resources_for
from starforge_dag.dev.runner import drain_queue
from starforge_dag.dev.stack import Stack
from starforge_dag.jobs import BUILD_ID_TAG
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store
from starforge_dag.store.db import dispose_all, normalize_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.deliveries import GitHub  # the signed pushes the tests send
from support.redis_server import RedisServer  # the tests' own Redis
from support.stack_client import post_push, wait_for_build  # the helpers the e2e tests drive a stack with

TERMINAL = {"succeeded", "failed", "canceled", "superseded", "timed_out"}
SECRET, TOKEN = secrets.token_hex(16), secrets.token_hex(16)
WORKER_SLOTS = Settings().worker_concurrency  # runs one worker executes at once, the Stack's default
WIDTHS = [58, 6, 9, 8, 10, 8, 9, 8, 10, 8, 9, 8, 9, 12]


@dataclass
class Timing:
    """Seconds after the webhook was accepted (the build's queued transition)."""

    created: float
    launched: float
    started: float
    succeeded: float | None

    @property
    def run_start(self) -> float:
        """Launch (RUN_STARTING) to RUN_START: what starting the run's process costs."""
        return self.started - self.launched


@contextmanager
def scratch_databases(admin_url: str, *roles: str) -> Iterator[dict[str, str]]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    prefix = f"starforge_bench_pipeline_{secrets.token_hex(4)}"
    names = {role: f"{prefix}_{role}" for role in roles}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield {role: admin.url.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    finally:
        dispose_all()
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def postgres_instance(url: str, root: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on `url`, to read run records (and, for the baseline, to run on)."""
    home = root / f"dagster-{secrets.token_hex(3)}"
    home.mkdir()
    config = {"storage": {"postgres": {"postgres_url": normalize_url(url)}}, "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@starforge.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@starforge.invalid",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repos(root: Path, count: int) -> tuple[list[str], str]:
    """`count` bare repos holding the same commit (one app each, so no build supersedes another)."""
    work = root / "source"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "Dockerfile").write_text("FROM busybox\nCOPY . /app\nRUN make\n")
    (work / "app.py").write_text("print('hello')\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Benchmark app")
    urls = []
    for i in range(count):
        bare = root / f"app-{i}.git"
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(work, "push", "-q", str(bare), "HEAD:main")
        urls.append(f"file://{bare}")
    return urls, git(work, "rev-parse", "HEAD")


def workspace_of(i: int, burst: int) -> str:
    """The first burst is one workspace's (its 4-run limit applies), the second one app in each of `burst`
    workspaces, the builds one at a time one workspace's again."""
    return f"bench-{i - burst}" if burst <= i < 2 * burst else "bench"


def register_apps(store: BuildStore, urls: list[str], burst: int) -> None:
    for i, url in enumerate(urls):
        workspace = workspace_of(i, burst)
        store.add_app(workspace, f"app-{i}", url, "main", repo_full_name=f"{workspace}/app-{i}")


def timings(store: BuildStore, instance: dg.DagsterInstance, build_ids: list[int]) -> list[Timing]:
    records = {r.dagster_run.tags.get(BUILD_ID_TAG): r for r in instance.get_run_records()}
    out = []
    for build_id in build_ids:
        phases = {t.to_state.value: t.at.timestamp() for t in reversed(store.transitions(build_id))}
        record = records[str(build_id)]
        accepted = phases["queued"]
        started = record.start_time or float("nan")
        starting = instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_STARTING)
        out.append(
            Timing(
                created=record.create_timestamp.timestamp() - accepted,
                launched=(starting[0].timestamp if starting else started) - accepted,
                started=started - accepted,
                succeeded=phases["succeeded"] - accepted if "succeeded" in phases else None,
            )
        )
    return out


@dataclass
class Result:
    label: str
    timings: list[Timing]
    wall: float


def run_baseline(urls: list[str], sha: str, burst: int, databases: dict[str, str], root: Path) -> list[Result]:
    """The burst through the webhook code, then one drain_queue; then the rest one build at a time."""
    settings = Settings(
        home=root / "baseline",
        database_url=databases["baseline_builds"],
        build_backend="fake",
        github_webhook_secret=SECRET,
        api_token=TOKEN,
        git_allowed_schemes="file",
    )
    store = open_store(settings.resolved_database_url)
    register_apps(store, urls, burst)
    resources = resources_for(settings)
    with (
        TestClient(create_app(settings)) as client,
        postgres_instance(databases["baseline_dagster"], root) as instance,
        (root / "baseline.log").open("w") as log,
    ):

        def deliver(i: int) -> list[int]:
            github = GitHub(client, SECRET)
            full_name = f"{workspace_of(i, burst)}/app-{i}"
            payload = github.push(github.commit(sha=sha), full_name=full_name, repo_url=urls[i])
            return github.deliver(payload).json()["created"]

        def drain() -> None:
            with redirect_stdout(log), redirect_stderr(log):
                drain_queue(instance, resources)

        bursts = []
        for first in (0, burst):
            began = time.monotonic()
            ids = [b for i in range(first, first + burst) for b in deliver(i)]
            drain()
            bursts.append((ids, time.monotonic() - began))
        began, serial_ids = time.monotonic(), []
        for i in range(2 * burst, len(urls)):
            serial_ids += deliver(i)
            drain()
        serial_wall = time.monotonic() - began
        return [
            Result(f"in process, burst of {burst}, 1 workspace", timings(store, instance, bursts[0][0]), bursts[0][1]),
            Result(f"in process, burst of {burst} workspaces", timings(store, instance, bursts[1][0]), bursts[1][1]),
            Result("in process, one at a time", timings(store, instance, serial_ids), serial_wall),
        ]


class WorkerMemory:
    """Resident memory of the stack's workers (each worker with its run processes), sampled in a thread."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def total(self) -> int:
        rss = 0
        for name in self.stack.worker_names:
            process = self.stack.services[name].process
            assert process is not None
            for each in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
                try:
                    rss += each.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        return rss

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.total())

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stack(
    urls: list[str],
    sha: str,
    burst: int,
    databases: dict[str, str],
    root: Path,
    workers: int = 0,
    label: str = "Stack",
    memory: dict[str, float] | None = None,
    prefix: str = "stack",
    sensor_wait_s: float | None = None,
    serial_gap_s: float = 0.0,
) -> tuple[list[Result], float]:
    """The bursts through the Stack's API, waiting for every build; then the rest one build at a time."""
    env = {
        "STARFORGE_HOME": str(root / prefix),
        "STARFORGE_DATABASE_URL": databases[f"{prefix}_builds"],
        "STARFORGE_DAGSTER_PG_URL": databases[f"{prefix}_dagster"],
        "STARFORGE_BUILD_BACKEND": "fake",
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",
        "STARFORGE_GITHUB_WEBHOOK_SECRET": SECRET,
        "STARFORGE_API_TOKEN": TOKEN,
    }
    if sensor_wait_s is not None:
        env["STARFORGE_SENSOR_WAIT_S"] = str(sensor_wait_s)
    store = open_store(databases[f"{prefix}_builds"])
    register_apps(store, urls, burst)
    with RedisServer(root / f"{prefix}-redis") as redis_server:
        env["STARFORGE_CELERY_BROKER_URL"] = redis_server.url
        return _measure_stack(
            env, store, urls, sha, burst, databases, root, workers, label, memory, prefix, serial_gap_s
        )


def _measure_stack(env, store, urls, sha, burst, databases, root, workers, label, memory, prefix, serial_gap_s):
    began = time.monotonic()
    with Stack(env, workers=workers) as stack:
        startup = time.monotonic() - began

        def deliver(i: int) -> list[int]:
            return post_push(stack, urls[i], f"{workspace_of(i, burst)}/app-{i}", sha).json()["created"]

        sampler = WorkerMemory(stack)
        idle = sampler.total()
        bursts = []
        with sampler:
            for first in (0, burst):
                began = time.monotonic()
                ids = [b for i in range(first, first + burst) for b in deliver(i)]
                for build_id in ids:
                    wait_for_build(stack, build_id, TERMINAL, timeout=900)
                bursts.append((ids, time.monotonic() - began))
        if memory is not None and workers:
            memory.update(idle_mb=idle / 2**20 / workers, peak_mb=sampler.peak / 2**20, idle_total_mb=idle / 2**20)
        # Pushes come at random times, not in step with the sensor's loop: a seeded gap before each one, the same
        # sequence on every stack of the run.
        gaps = random.Random(17)
        began, serial_ids = time.monotonic(), []
        for i in range(2 * burst, len(urls)):
            time.sleep(gaps.uniform(0, serial_gap_s))
            serial_ids += deliver(i)
            wait_for_build(stack, serial_ids[-1], TERMINAL, timeout=300)
        serial_wall = time.monotonic() - began
    with postgres_instance(databases[f"{prefix}_dagster"], root) as instance:
        return [
            Result(f"{label}, burst of {burst}, 1 workspace", timings(store, instance, bursts[0][0]), bursts[0][1]),
            Result(f"{label}, burst of {burst} workspaces", timings(store, instance, bursts[1][0]), bursts[1][1]),
            Result(f"{label}, one at a time", timings(store, instance, serial_ids), serial_wall),
        ], startup


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def row(result: Result) -> str:
    done = [t.succeeded for t in result.timings if t.succeeded is not None]
    cells = [result.label, f"{len(done)}/{len(result.timings)}"]
    columns = (
        [t.created for t in result.timings],
        [t.launched for t in result.timings],
        [t.run_start for t in result.timings],
        [t.started for t in result.timings],
        done,
    )
    for values in columns:
        cells += [f"{p(values, 50):.2f}", f"{p(values, 95):.2f}"] if values else ["-", "-"]
    cells += [f"{result.wall:.1f}", f"{len(done) / result.wall * 60:.1f}"]
    return "".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=20, help="builds in the burst (one app each)")
    parser.add_argument("--serial", type=int, default=5, help="builds pushed one at a time after the burst")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        help="a database to connect to for CREATE/DROP DATABASE of scratch databases",
    )
    parser.add_argument("--workers", type=int, default=0, help="also run the pushes on N Celery run workers")
    parser.add_argument(
        "--compare-sensor-wait",
        action="store_true",
        help="with --workers, also run the workers' stack with STARFORGE_SENSOR_WAIT_S=0 (the sensor never waits)",
    )
    parser.add_argument(
        "--serial-gap",
        type=float,
        default=5.0,
        help="before each build pushed one at a time, wait a random 0..S seconds (seeded), so the pushes fall at "
        "random points of the sensor's ~5 s loop; 0 pushes as soon as the previous build ended",
    )
    args = parser.parse_args()
    roles = ["baseline_builds", "baseline_dagster", "stack_builds", "stack_dagster"]
    roles += ["workers_builds", "workers_dagster"] if args.workers else []
    roles += ["nowait_builds", "nowait_dagster"] if args.workers and args.compare_sensor_wait else []
    load_before = os.getloadavg()
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, scratch_databases(args.postgres_admin_url, *roles) as databases:
        root = Path(tmp)
        urls, sha = make_repos(root, 2 * args.builds + args.serial)
        baseline = run_baseline(urls, sha, args.builds, databases, root)
        measured, startup = run_stack(urls, sha, args.builds, databases, root, serial_gap_s=args.serial_gap)
        with_workers: list[Result] = []
        without_wait: list[Result] = []
        if args.workers:
            label = f"{args.workers} Celery workers"
            with_workers, _ = run_stack(
                urls, sha, args.builds, databases, root, args.workers, label, memory, "workers", None, args.serial_gap
            )
            if args.compare_sensor_wait:
                label = f"{args.workers} Celery workers, sensor wait 0"
                without_wait, _ = run_stack(
                    urls, sha, args.builds, databases, root, args.workers, label, None, "nowait", 0, args.serial_gap
                )
    load_after = os.getloadavg()

    print(
        f"\n{args.builds} builds pushed at once in one workspace, then {args.builds} at once in {args.builds} "
        f"workspaces, then {args.serial} one at a time (a random 0-{args.serial_gap:g} s gap before each push); "
        "fake backend, one app per build;"
    )
    print("seconds after the webhook was accepted (p50, p95):")
    print("  created: run record made by the sensor tick; launched: run handed to a run process (RUN_STARTING;")
    print("  in process the same as started); run start: launched to started (the run process's start);")
    print("  started: run began executing (RUN_START); done: build succeeded")
    print(f"stack start-up (API, daemon, webserver until all answer): {startup:.1f}s")
    print(
        "".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(
                zip(
                    [
                        "path",
                        "ok",
                        "created",
                        "p95",
                        "launched",
                        "p95",
                        "run start",
                        "p95",
                        "started",
                        "p95",
                        "done",
                        "p95",
                        "wall s",
                        "builds/min",
                    ],
                    WIDTHS,
                )
            )
        )
    )
    for i, (stack_result, baseline_result) in enumerate(zip(measured, baseline)):
        if with_workers:
            print(row(with_workers[i]))
        if without_wait:
            print(row(without_wait[i]))
        print(row(stack_result))
        print(row(baseline_result))
    if memory:
        print(
            f"worker memory (RSS, worker and its run processes): idle {memory['idle_mb']:.0f} MB per worker; "
            f"at the bursts' peak {memory['peak_mb']:.0f} MB for all {args.workers} "
            f"(idle {memory['idle_total_mb']:.0f} MB); per concurrent run "
            f"{(memory['peak_mb'] - memory['idle_total_mb']) / (args.workers * WORKER_SLOTS):.0f} MB "
            f"({args.workers * WORKER_SLOTS} runs at once: every worker slot is busy in a burst)"
        )
    print(
        f"machine: {os.cpu_count()} cores; load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.2f}' for x in load_before)}, after {'/'.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
