"""BuildKit fixtures: a client of the local dockerd's BuildKit and a registry that wants tokens (services come from
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.registries import TokenRegistry
from support.registries import token_registry as serve_token_registry

from starforge_dag.buildkit.client import BuildKitClient


@pytest.fixture
def buildkit_client(buildkit_addr: str) -> Iterator[BuildKitClient]:
    with BuildKitClient(buildkit_addr) as client:
        yield client


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """docker-registry with `auth: token` on a free port, trusting a token server started here."""
    with serve_token_registry(tmp_path_factory.mktemp("token-registry")) as registry:
        yield registry
