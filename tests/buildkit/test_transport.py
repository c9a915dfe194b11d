"""Transport: every address scheme reaches a Control server, and the docker bridge cleans up after itself."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from starforge_dag.buildkit.client import BuildKitClient
from starforge_dag.buildkit.pb import control_pb2, control_pb2_grpc, ops_pb2, worker_pb2
from starforge_dag.buildkit.transport import DockerBridge, TLSConfig, docker_upgrade
from starforge_dag.core.errors import TransientBuildError


class FakeControl(control_pb2_grpc.ControlServicer):
    """Answers ListWorkers with one recognisable worker."""

    def ListWorkers(
        self, request: control_pb2.ListWorkersRequest, context: grpc.ServicerContext
    ) -> control_pb2.ListWorkersResponse:
        worker = worker_pb2.WorkerRecord(
            ID="fake-worker", platforms=[ops_pb2.Platform(OS="linux", Architecture="arm64")]
        )
        return control_pb2.ListWorkersResponse(record=[worker])


def bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("docker-bridge")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for buildkit.test and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    (d / "san.ext").write_text("subjectAltName=DNS:buildkit.test\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            *extra,
        )
    return d


@pytest.fixture
def fake_server(pki: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The fake Control service on an mTLS TCP port and on a unix socket."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    control_pb2_grpc.add_ControlServicer_to_server(FakeControl(), server)
    creds = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    sock = tmp_path / "buildkitd.sock"
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    yield {"tcp": f"tcp://127.0.0.1:{port}", "unix": f"unix://{sock}"}
    server.stop(grace=None)


def test_mtls_with_server_name_override(pki: Path, fake_server: dict[str, str]) -> None:
    tls = TLSConfig.from_files(pki / "ca.pem", pki / "client.pem", pki / "client.key", server_name="buildkit.test")
    with BuildKitClient(fake_server["tcp"], tls=tls) as client:
        [worker] = client.list_workers(timeout=10)
    assert (worker.id, worker.platforms) == ("fake-worker", ["linux/arm64"])


def test_mtls_checks_the_server_name(pki: Path, fake_server: dict[str, str]) -> None:
    tls = TLSConfig.from_files(pki / "ca.pem", pki / "client.pem", pki / "client.key")
    with BuildKitClient(fake_server["tcp"], tls=tls) as client, pytest.raises(TransientBuildError):
        client.list_workers(timeout=5)


def test_unix_socket_address(fake_server: dict[str, str]) -> None:
    with BuildKitClient(fake_server["unix"]) as client:
        assert [w.id for w in client.list_workers(timeout=10)] == ["fake-worker"]


@pytest.mark.integration
def test_list_workers_through_the_docker_socket(buildkit_addr: str) -> None:
    with BuildKitClient(buildkit_addr) as client:
        workers = client.list_workers()
    assert workers and "linux/amd64" in workers[0].platforms


@pytest.mark.integration
def test_unix_address_through_the_bridge_socket(docker_sock: str) -> None:
    """dockerd's gRPC behind a plain unix socket is an ordinary unix:// BuildKit endpoint."""
    with DockerBridge(docker_sock) as proxy, BuildKitClient(f"unix://{proxy.path}") as client:
        assert client.exporter == "image"
        assert any("linux/amd64" in w.platforms for w in client.list_workers())


def _tcp_listeners_of_this_process() -> list[str]:
    """Listening TCP sockets among this process's file descriptors (from /proc, state 0A = LISTEN)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.append(fields[1])
    return found


@pytest.mark.integration
def test_the_docker_bridge_opens_no_tcp_port_and_its_socket_is_private(docker_sock: str, buildkit_addr: str) -> None:
    before = _tcp_listeners_of_this_process()
    with DockerBridge(docker_sock) as bridge, BuildKitClient(buildkit_addr) as client:
        assert client.list_workers()
        assert _tcp_listeners_of_this_process() == before
        directory = os.path.dirname(bridge.path)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_ISSOCK(os.stat(bridge.path).st_mode)
        assert stat.S_IMODE(os.stat(bridge.path).st_mode) == 0o600
        assert bridge.target == f"unix:{bridge.path}"
    assert not os.path.exists(directory)


@pytest.mark.integration
def test_docker_channels_leave_no_bridge_threads(buildkit_addr: str) -> None:
    before = bridge_threads()
    for _ in range(3):
        with BuildKitClient(buildkit_addr) as client:
            client.list_workers()
            assert len(bridge_threads()) > len(before)
    assert bridge_threads() == before


@pytest.mark.integration
def test_closed_bridge_refuses_connections(docker_sock: str) -> None:
    bridge = DockerBridge(docker_sock)
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(bridge.path)
    bridge.close()
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(FileNotFoundError):
        probe.connect(bridge.path)


@pytest.mark.integration
def test_docker_upgrade_reports_a_refusal(docker_sock: str) -> None:
    with pytest.raises(ConnectionError, match="404"):
        docker_upgrade(docker_sock, "/no-such-endpoint")
    upgraded = docker_upgrade(docker_sock, "/grpc")
    upgraded.close()
