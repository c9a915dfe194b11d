"""BuildKit fixtures: a client of the local dockerd's BuildKit and a registry that wants tokens (services come from
tests/conftest.py)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from registries import TokenRegistry, signing_identity, token_server

from starforge_dag.buildkit.client import BuildKitClient
from starforge_dag.dev.stack import free_port


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
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  delete:\n    enabled: true\n  filesystem:\n    rootdirectory: {root}/data\n"
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
