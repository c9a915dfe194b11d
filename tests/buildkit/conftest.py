"""BuildKit fixtures: the local dockerd and registry from scripts/services.sh, and a registry that wants tokens."""

from __future__ import annotations

import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

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


from token_registry import token_registry  # noqa: E402, F401  (the fixture, shared with its module)
