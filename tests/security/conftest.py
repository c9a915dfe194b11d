"""Fixtures of the security suite; the hostile inputs themselves live in tests/support/hostile_urls.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """The file an injected command would create; every test ends by checking it was not."""
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a hostile URL ran a command"
