"""The whole pipeline as real processes (API, dagster-daemon, dagster-webserver) for e2e tests, benchmarks and operators."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import httpx

from .github.signature import sign
from .instance import PROJECT_ROOT, prepare_dagster_home
from .settings import Settings
from .store.db import normalize_url

ENV_PREFIX = "STARFORGE_"
BIN = Path(sys.executable).parent
POLL_S = 0.25
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 40
LOCATION = "starforge"


class StackError(RuntimeError):
    """A process of the stack died or never answered, or a wait ran out; the message says what was seen."""


class _MappingSettings(Settings):
    """Settings from the stack's own mapping only, so a stack never picks up the caller's STARFORGE_* variables."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *sources, **named_sources):  # type: ignore[override]
        return (init_settings,)


def settings_from(env: Mapping[str, str]) -> Settings:
    """The Settings the stack's processes will read from `env`."""
    fields = {
        name: env[ENV_PREFIX + name.upper()] for name in Settings.model_fields if ENV_PREFIX + name.upper() in env
    }
    return _MappingSettings(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (code servers, run workers), found before signals reparent them."""
    tree, found, todo = _children_by_parent(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal(pids: Collection[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
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
    pids = {p.pid for p in running}.union(*(_descendants(p.pid) for p in running))
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        for process in running:
            process.poll()
        time.sleep(0.1)
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _signal([pid for pid in pids if _alive(pid)], signal.SIGKILL)
    for process in running:
        process.wait()
    for service in services:
        service.close_log()


class Stack:
    """API, daemon and webserver on one DAGSTER_HOME (Postgres storage); stopped on exit, even after a failure."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        api_port: int | None = None,
        webserver_port: int | None = None,
        startup_timeout_s: float = 300.0,
        root: Path = PROJECT_ROOT,
    ):
        if not env.get("STARFORGE_DAGSTER_PG_URL"):
            raise ValueError("a stack keeps Dagster storage in Postgres: set STARFORGE_DAGSTER_PG_URL")
        self.settings = settings_from(env)
        self.root = root
        self.startup_timeout_s = startup_timeout_s
        self.api_port = api_port or free_port()
        self.webserver_port = webserver_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.webserver_url = f"http://127.0.0.1:{self.webserver_port}"
        self.home = self.settings.resolved_home
        self.logs_dir = self.home / "logs"
        self.dagster_home = self.home / "dagster-postgres"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "DAGSTER_HOME"},
            **env,
            # dagster-postgres hands the URL to SQLAlchemy 2.1, where a bare postgresql:// means psycopg 3.
            "STARFORGE_DAGSTER_PG_URL": normalize_url(env["STARFORGE_DAGSTER_PG_URL"]),
            "STARFORGE_HOME": str(self.home),
            "DAGSTER_HOME": str(self.dagster_home),
            "PYTHONUNBUFFERED": "1",
        }
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
        prepare_dagster_home(self.settings, postgres=True)
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
            time.sleep(POLL_S * 2)
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


def run_stack_forever(env: Mapping[str, str] | None = None, api_port: int = 8000, webserver_port: int = 3000) -> None:
    """`starforge up`: the stack on this environment's STARFORGE_* settings until Ctrl-C or SIGTERM."""
    chosen = env if env is not None else {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Stack(chosen, api_port=api_port, webserver_port=webserver_port) as stack:
        print(f"API        {stack.api_url}", flush=True)
        print(f"Dagster UI {stack.webserver_url}", flush=True)
        print(f"logs       {stack.logs_dir}", flush=True)
        try:
            while all(s.process is not None and s.process.poll() is None for s in stack.services.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            return
        raise StackError(f"a process of the stack exited:\n{stack.log_tails()}")
