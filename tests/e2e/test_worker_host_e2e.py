"""A run worker on another host: its own network namespace, reaching Postgres, Redis, BuildKit and the registry only
through forwarded ports, runs real builds (dockerd's BuildKit, the local registry) to success."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG
from support.gitrepos import GitRepo
from support.netns import Forwarder, Namespace, NamespaceNotPermitted, Relay, namespace, tcp_connect, unix_connect
from support.redis_server import RedisServer
from support.stack_client import post_push, wait_for_build

from starforge_dag.dev.stack import BIN, Service, Stack, graphql, stop_all
from starforge_dag.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TERMINAL = {"succeeded", "failed", "canceled", "superseded", "timed_out"}
REGISTRY_PORT = 5000  # where the image names say the registry is, on the host and, relayed, in the namespace
WORKER_READY_TIMEOUT_S = 180.0
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status tags { key value } } ... on Error { message } }
}
"""


@dataclass
class RemoteWorker:
    """The worker in the namespace, the namespace, and the host-side forwarders it had to use."""

    ns: Namespace
    service: Service
    forwarders: dict[str, Forwarder]
    hostname: str

    def log(self) -> str:
        return self.service.log_path.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """The worker logs a task's end just after its run ends: wait for it rather than race it."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not in the worker's log:\n{self.service.log_tail()}"
            time.sleep(0.25)


def _via(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced: the same service reached through a forwarder."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    postgres_database, redis_server: RedisServer, services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """API, daemon and webserver on the host, launching runs onto Redis; no worker of their own."""
    env = {
        "STARFORGE_HOME": str(tmp_path_factory.mktemp("starforge-home")),
        "STARFORGE_DATABASE_URL": postgres_database("starforge_host_builds"),
        "STARFORGE_DAGSTER_PG_URL": postgres_database("starforge_host_dagster"),
        "STARFORGE_BUILD_BACKEND": "buildkit",
        "STARFORGE_BUILDKIT_ADDR": services["STARFORGE_BUILDKIT_ADDR"],
        "STARFORGE_REGISTRY": services["STARFORGE_REGISTRY"],
        "STARFORGE_BUILDER_IMAGE": services["STARFORGE_BASE_IMAGE"],
        "STARFORGE_RUNTIME_IMAGE": services["STARFORGE_BASE_IMAGE"],
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",
        "STARFORGE_GITHUB_WEBHOOK_SECRET": secrets.token_hex(16),
        "STARFORGE_API_TOKEN": secrets.token_hex(16),
        "STARFORGE_CELERY_BROKER_URL": redis_server.url,
    }
    assert services["STARFORGE_REGISTRY"].startswith(f"127.0.0.1:{REGISTRY_PORT}/")
    with Stack(env, celery=True) as running:
        yield running


@pytest.fixture(scope="module")
def remote_worker(stack: Stack, services: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    try:
        made = namespace()
        ns = made.__enter__()
    except NamespaceNotPermitted as exc:
        pytest.skip(f"network namespaces are not permitted here: {exc}")
    relay: Relay | None = None
    service: Service | None = None
    try:
        env = stack.env
        database, dagster_pg = env["STARFORGE_DATABASE_URL"], env["STARFORGE_DAGSTER_PG_URL"]
        broker = env["STARFORGE_CELERY_BROKER_URL"]
        docker_sock = services["STARFORGE_BUILDKIT_ADDR"].removeprefix("docker://")
        forwarders = {
            "postgres": ns.forward(tcp_connect(*_hostport(database))),
            "redis": ns.forward(tcp_connect(*_hostport(broker))),
            "dockerd": ns.forward(unix_connect(docker_sock)),
            "registry": ns.forward(tcp_connect("127.0.0.1", REGISTRY_PORT)),
        }
        assert _hostport(dagster_pg) == _hostport(database)
        # The Docker API is a unix socket and the image names say 127.0.0.1:5000: both relayed inside the
        # namespace to the host's end of the pair, as an SSH-forwarded socket and port would be on a real host.
        relay_dir = tmp_path_factory.mktemp("relay")
        relay_sock = relay_dir / "docker.sock"
        relay = Relay(
            ns,
            [
                f"{relay_sock}={ns.host_ip}:{forwarders['dockerd'].port}",
                f"tcp:127.0.0.1:{REGISTRY_PORT}={ns.host_ip}:{forwarders['registry'].port}",
            ],
        )
        pg_port = forwarders["postgres"].port
        worker_env = {
            **env,
            "STARFORGE_DATABASE_URL": _via(database, ns.host_ip, pg_port),
            "STARFORGE_DAGSTER_PG_URL": _via(dagster_pg, ns.host_ip, pg_port),
            "STARFORGE_CELERY_BROKER_URL": _via(broker, ns.host_ip, forwarders["redis"].port),
            "STARFORGE_BUILDKIT_ADDR": f"docker://{relay_sock}",
        }
        hostname = f"netns-{ns.name}"
        service = Service(
            "netns-worker",
            ns.argv([str(BIN / "starforge"), "worker", "--concurrency", "2", "--hostname", f"{hostname}@%h"]),
            stack.logs_dir / "netns-worker.log",
        )
        service.log_file = service.log_path.open("wb")
        service.process = subprocess.Popen(
            service.argv,
            cwd=stack.root,
            env=worker_env,
            stdout=service.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while " ready." not in service.log_path.read_text(errors="replace"):
            assert service.process.poll() is None, service.log_tail()
            assert time.monotonic() < deadline, service.log_tail()
            time.sleep(0.25)
        yield RemoteWorker(ns, service, forwarders, hostname)
    finally:
        if service is not None:
            stop_all([service])
        if relay is not None:
            relay.close()
        made.__exit__(None, None, None)


def _reachable(ns: Namespace, host: str, port: int) -> bool:
    """Whether a TCP connection from inside the namespace to host:port succeeds."""
    probe = (
        "import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
        "except OSError:\n sys.exit(1)\n"
    )
    argv = ns.argv([str(BIN / "python"), "-c", probe, host, str(port)])
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _manifest_digest(image_ref: str) -> str:
    name, _, tag = image_ref.removeprefix(f"127.0.0.1:{REGISTRY_PORT}/").rpartition(":")
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    response = httpx.head(
        f"http://127.0.0.1:{REGISTRY_PORT}/v2/{name}/manifests/{tag}",
        headers={"Accept": accept},
        trust_env=False,
        timeout=30,
    )
    assert response.status_code == 200, response
    return response.headers["Docker-Content-Digest"]


def test_the_namespace_has_only_its_own_addresses(remote_worker: RemoteWorker, stack: Stack) -> None:
    ns = remote_worker.ns
    # Loopback, the namespace's end of the pair, and IPv6 link-local (no route leads anywhere from there).
    own = {a for a in ns.addresses() if a != "::1/128" and not a.startswith("fe80:")}
    assert own == {"127.0.0.1/8", f"{ns.ns_ip}/30"}, ns.addresses()
    routes = subprocess.run(["ip", "-n", ns.name, "-4", "route"], capture_output=True, text=True, check=True).stdout
    assert "default" not in routes, routes
    # The host's services are not there on the namespace's loopback, nor on the host's end of the pair...
    _, pg_port = _hostport(stack.env["STARFORGE_DATABASE_URL"])
    _, redis_port = _hostport(stack.env["STARFORGE_CELERY_BROKER_URL"])
    for port in (pg_port, redis_port, stack.api_port):
        assert not _reachable(ns, "127.0.0.1", port), port
        assert not _reachable(ns, ns.host_ip, port), port
    # ...only through the forwarders, and the registry relayed onto the namespace's loopback.
    assert _reachable(ns, ns.host_ip, remote_worker.forwarders["postgres"].port)
    assert _reachable(ns, "127.0.0.1", REGISTRY_PORT)


def test_builds_run_to_success_on_the_worker_in_the_namespace(
    remote_worker: RemoteWorker, stack: Stack, base_image: str, tmp_path: Path
) -> None:
    pid = remote_worker.service.process.pid  # type: ignore[union-attr]
    assert Path(f"/proc/{pid}/ns/net").stat().st_ino == remote_worker.ns.inode
    store = open_store(stack.settings.resolved_database_url)
    build_ids = []
    for i in range(2):
        repo = GitRepo(tmp_path, f"remote-{i}")
        sha = repo.commit(
            {"Dockerfile": f"FROM {base_image}\nCOPY . /app\nRUN cat /app/app.txt\n", "app.txt": f"app {i}\n"}
        )
        store.add_app("acme", f"remote-{i}", repo.url, "main", repo_full_name=f"acme/remote-{i}")
        answer = post_push(stack, repo.url, f"acme/remote-{i}", sha)
        assert answer.status_code == 202, answer.text
        build_ids += answer.json()["created"]

    builds = [wait_for_build(stack, b, TERMINAL, 300) for b in build_ids]
    assert [b["status"] for b in builds] == ["succeeded"] * 2, [(b["status"], b["error"]) for b in builds]
    for build in builds:
        assert build["image_digest"] == _manifest_digest(build["image_ref"])
        tags = graphql(stack, RUN_QUERY, {"runId": build["run_id"]})["runOrError"]["tags"]
        task_id = next(t["value"] for t in tags if t["key"] == DAGSTER_CELERY_TASK_ID_TAG)
        # The run's task was received and finished by the worker in the namespace (the only worker there is); the
        # build ends a moment before its run does.
        remote_worker.wait_for_line(f"execute_job[{task_id}] succeeded")
        assert f"execute_job[{task_id}] received" in remote_worker.log()
        run = graphql(stack, RUN_QUERY, {"runId": build["run_id"]})["runOrError"]
        assert run["status"] == "SUCCESS", run
    # Every service was reached across the pair, through its forwarder.
    used = {name: forwarder.accepted for name, forwarder in remote_worker.forwarders.items()}
    assert all(count > 0 for count in used.values()), used
    assert remote_worker.hostname in remote_worker.log()
