"""BuildKit fixtures: a client of the local dockerd's BuildKit (services come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from starforge_dag.buildkit.client import BuildKitClient


@pytest.fixture
def client(buildkit_addr: str) -> Iterator[BuildKitClient]:
    with BuildKitClient(buildkit_addr) as c:
        yield c
