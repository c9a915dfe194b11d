"""BuildKit fixtures: the local dockerd and registry from scripts/services.sh, and a registry that wants tokens."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registries import TokenRegistry, free_port, signing_identity, token_server

from starforge_dag.buildkit.client import BuildKitClient

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services.sh"


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """Start (or find running) dockerd and the registry; a failure fails the tests, never skips them."""
    up = subprocess.run(["bash", str(SERVICES), "up"], capture_output=True, text=True, timeout=1200, check=False)
    if up.returncode != 0:
        pytest.fail(f"scripts/services.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}", pytrace=False)
    env = subprocess.run(["bash", str(SERVICES), "env"], capture_output=True, text=True, check=True).stdout
    words = shlex.split(env.strip())
    assert words[0] == "export"
    return dict(word.split("=", 1) for word in words[1:])


@pytest.fixture(scope="session")
def buildkit_addr(services: dict[str, str]) -> str:
    return services["STARFORGE_BUILDKIT_ADDR"]


@pytest.fixture(scope="session")
def docker_sock(buildkit_addr: str) -> str:
    return buildkit_addr.removeprefix("docker://")


@pytest.fixture(scope="session")
def base_image(services: dict[str, str]) -> str:
    return services["STARFORGE_BASE_IMAGE"]


@pytest.fixture
def image_name(services: dict[str, str]) -> str:
    """A fresh name:tag under the test registry, so tests never see each other's images."""
    return f"{services['STARFORGE_REGISTRY']}/test-{uuid.uuid4().hex[:10]}:v1"


@pytest.fixture
def client(buildkit_addr: str) -> Iterator[BuildKitClient]:
    with BuildKitClient(buildkit_addr) as c:
        yield c


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """docker-registry with `auth: token` on a free port, trusting a token server started here."""
    root = tmp_path_factory.mktemp("token-registry")
    key, cert = signing_identity(root)
    host = f"127.0.0.1:{free_port()}"
    registry = TokenRegistry(host, "", "starforge-test-registry", "robot", uuid.uuid4().hex)
    server = token_server(registry, "starforge-test-issuer", key, cert)
    registry.realm = f"http://127.0.0.1:{server.server_port}/token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
        f"http:\n  addr: {host}\nauth:\n  token:\n    realm: {registry.realm}\n    service: {registry.service}\n"
        f"    issuer: starforge-test-issuer\n    rootcertbundle: {root}/token-issuer.pem\n"
    )
    log = (root / "registry.log").open("w")
    process = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:  # the registry has no readiness signal but its first answer
            try:
                if httpx.get(f"http://{host}/v2/", timeout=1, trust_env=False).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (root / "registry.log").read_text()
            time.sleep(0.1)
        yield registry
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        server.shutdown()
        server.server_close()
