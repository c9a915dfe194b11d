"""The whole pipeline as real processes (API, dagster-daemon, dagster-webserver): `starforge up`, e2e tests, benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import httpx
import psutil

from ..settings import Settings, child_environ, starforge_environ
from ..store.db import normalize_url
from .instance import PROJECT_ROOT, prepare_dagster_home

BIN = Path(sys.executable).parent
POLL_S = 0.5
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 40
LOCATION = "starforge"


class StackError(RuntimeError):
    """A process of the stack died or never answered, or a wait ran out; the message says what was seen."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[psutil.Process]:
    """Every process below `pid` (code servers, run workers), found before signals reparent them."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal(groups: Collection[int], processes: Collection[psutil.Process], sig: signal.Signals) -> None:
    """`sig` to each process group in `groups` and to each of `processes`, skipping those already gone."""
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


@dataclass
class Service:
    """One process of the stack and the log file its output goes to."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log yet)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close_log(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def stop_all(services: Collection[Service], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every process, its group and its descendants at once; SIGKILL whatever is left after the grace."""
    running = [s.process for s in services if s.process is not None and s.process.poll() is None]
    below = [child for process in running for child in _descendants(process.pid)]
    groups = [process.pid for process in running]  # each service leads its own session and group
    _signal(groups, below, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    _, left = psutil.wait_procs(below, timeout=grace_s)
    for process in running:  # our own children: Popen reaps them
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    _signal(groups, left, signal.SIGKILL)
    for process in running:
        process.wait()
    for service in services:
        service.close_log()


class Stack:
    """API, daemon and webserver on one DAGSTER_HOME (Postgres storage); stopped on exit, even after a failure.

    With `workers`, that many `starforge worker` processes run the builds (deploy/dagster-celery.yaml); with
    `celery` and no `workers`, the builds wait on the broker for workers started elsewhere.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        api_port: int | None = None,
        webserver_port: int | None = None,
        startup_timeout_s: float = 300.0,
        root: Path = PROJECT_ROOT,
        workers: int = 0,
        worker_concurrency: int | None = None,
        celery: bool = False,
    ):
        if not env.get("STARFORGE_DAGSTER_PG_URL"):
            raise ValueError("a stack keeps Dagster storage in Postgres: set STARFORGE_DAGSTER_PG_URL")
        self.settings = Settings.from_environ(env)
        self.root = root
        self.startup_timeout_s = startup_timeout_s
        self.api_port = api_port or free_port()
        self.webserver_port = webserver_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.webserver_url = f"http://127.0.0.1:{self.webserver_port}"
        self.home = self.settings.resolved_home
        self.logs_dir = self.home / "logs"
        self.workers = workers
        self.celery = celery or workers > 0
        self.dagster_home = self.home / ("dagster-celery" if self.celery else "dagster-postgres")
        broker = {"STARFORGE_CELERY_BROKER_URL": self.settings.celery_broker_url.get_secret_value()}
        self.env = child_environ(
            {
                **env,
                **(broker if self.celery else {}),
                # dagster-postgres hands the URL to SQLAlchemy 2.1, where a bare postgresql:// means psycopg 3.
                "STARFORGE_DAGSTER_PG_URL": normalize_url(env["STARFORGE_DAGSTER_PG_URL"]),
                "STARFORGE_HOME": str(self.home),
                "DAGSTER_HOME": str(self.dagster_home),
                "PYTHONUNBUFFERED": "1",
            }
        )
        workspace = str(root / "workspace.yaml")
        self.services = {
            "api": Service(
                "api", [str(BIN / "starforge"), "api", "--port", str(self.api_port)], self.logs_dir / "api.log"
            ),
            "daemon": Service(
                "daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], self.logs_dir / "daemon.log"
            ),
            "webserver": Service(
                "webserver",
                [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(self.webserver_port)],
                self.logs_dir / "webserver.log",
            ),
        }
        concurrency = ["--concurrency", str(worker_concurrency)] if worker_concurrency else []
        for i in range(1, workers + 1):
            name = f"worker-{i}"
            self.services[name] = Service(
                name,
                [str(BIN / "starforge"), "worker", "--hostname", f"{name}-{self.api_port}@%h", *concurrency],
                self.logs_dir / f"{name}.log",
            )

    @property
    def api_token(self) -> str:
        return self.settings.api_token.get_secret_value()

    @property
    def webhook_secret(self) -> str:
        return self.settings.github_webhook_secret.get_secret_value()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start all three at once (imports dominate start-up), then wait until each one answers."""
        prepare_dagster_home(self.settings, postgres=True, celery=self.celery)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services.values():
            service.log_file = service.log_path.open("wb")
            service.process = subprocess.Popen(
                service.argv,
                cwd=self.root,
                env=self.env,
                stdout=service.log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        self._wait_until("api", self._api_ready, deadline)
        self._wait_until("webserver", self._location_loaded, deadline)
        self._wait_until("daemon", self._daemons_healthy, deadline)
        for name in self.worker_names:
            self._wait_until(name, self._worker_ready(name), deadline)

    @property
    def worker_names(self) -> list[str]:
        return [name for name in self.services if name.startswith("worker-")]

    def _worker_ready(self, name: str) -> Callable[[], str | None]:
        """Celery logs `ready.` once the worker consumes its queue."""
        log_path = self.services[name].log_path

        def probe() -> str | None:
            text = log_path.read_text(errors="replace") if log_path.exists() else ""
            return None if " ready." in text else "not consuming its queue yet"

        return probe

    def stop(self) -> None:
        stop_all(list(self.services.values()))

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(f"--- {s.name} ({s.log_path}) ---\n{s.log_tail(lines)}" for s in self.services.values())

    def _wait_until(self, name: str, probe: Callable[[], str | None], deadline: float) -> None:
        """Poll `probe` (None means ready, else what is missing) while watching the process for an early exit."""
        service = self.services[name]
        last = "not probed yet"
        while time.monotonic() < deadline:
            assert service.process is not None
            if service.process.poll() is not None:
                raise StackError(f"{name} exited with {service.process.returncode}:\n{service.log_tail()}")
            try:
                missing = probe()
            except httpx.HTTPError as exc:
                missing = f"{type(exc).__name__}: {exc}"
            if missing is None:
                return
            last = missing
            time.sleep(POLL_S)
        raise StackError(f"{name} not ready after {self.startup_timeout_s:g}s ({last}):\n{service.log_tail()}")

    def _api_ready(self) -> str | None:
        response = httpx.get(f"{self.api_url}/healthz", timeout=5)
        return None if response.status_code == 200 else f"/healthz answered {response.status_code}"

    def _location_loaded(self) -> str | None:
        data = graphql(self, _WORKSPACE_QUERY)
        entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry is None or entry["loadStatus"] != "LOADED":
            return f"code location {LOCATION} not loaded yet"
        loaded = entry["locationOrLoadError"]
        if loaded["__typename"] == "PythonError":
            causes = "".join(f"\ncaused by: {cause['message']}" for cause in loaded["causes"])
            raise StackError(f"code location {LOCATION} failed to load: {loaded['message']}{causes}")
        return None

    def _daemons_healthy(self) -> str | None:
        statuses = graphql(self, _DAEMON_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        sick = [s["daemonType"] for s in statuses if s["required"] and not s["healthy"]]
        return f"daemons without a fresh heartbeat: {', '.join(sick)}" if sick or not statuses else None

    def api(self) -> httpx.Client:
        """A client of the stack's API carrying the bearer token."""
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.api_token}"}, timeout=30)


_WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message causes { message } } }
      }
    }
    ... on PythonError { message }
  }
}
"""

_DAEMON_QUERY = """
query Daemons { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
"""


def graphql(stack: Stack, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST to the webserver's /graphql; GraphQL-level errors raise instead of hiding in the answer."""
    response = httpx.post(
        f"{stack.webserver_url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise StackError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
    return body["data"]


def run_stack_forever(
    env: Mapping[str, str] | None = None, api_port: int = 8000, webserver_port: int = 3000, workers: int = 0
) -> None:
    """`starforge up`: the stack on this environment's STARFORGE_* settings until Ctrl-C or SIGTERM."""
    chosen = env if env is not None else starforge_environ()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Stack(chosen, api_port=api_port, webserver_port=webserver_port, workers=workers) as stack:
        if workers:
            print(f"workers    {workers} Celery run workers", flush=True)
        print(f"API        {stack.api_url}", flush=True)
        print(f"Dagster UI {stack.webserver_url}", flush=True)
        print(f"logs       {stack.logs_dir}", flush=True)
        try:
            while all(s.process is not None and s.process.poll() is None for s in stack.services.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            return
        raise StackError(f"a process of the stack exited:\n{stack.log_tails()}")
