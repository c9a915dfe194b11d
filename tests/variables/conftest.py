"""Variables tests: a secret box with a fresh key (the build store fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from starforge_dag.variables.crypto import SecretBox, new_key


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([new_key()])
