"""The build job and sensors in process: fake backend, SQLite build store (the instance and pipeline fixtures are in
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.deliveries import WEBHOOK_SECRET

from starforge_dag.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        build_backend="fake",
        github_webhook_secret=WEBHOOK_SECRET,
        api_token="token-for-dagster-tests",
        git_allowed_schemes="file",
    )
