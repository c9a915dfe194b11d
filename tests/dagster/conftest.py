"""The build job and sensors in process: fake backend, SQLite build store, temporary Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_helpers import SECRET

from starforge_dag.definitions import resources_for
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, open_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        build_backend="fake",
        github_webhook_secret=SECRET,
        api_token="token-for-dagster-tests",
        git_allowed_schemes="file",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[BuildStore]:
    store = open_store(settings.resolved_database_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def make_resources(settings: Settings):
    def make(**fake) -> dict:
        resources = resources_for(settings)
        resources["build_service"] = FakeBuildService(**fake)
        return resources

    return make
