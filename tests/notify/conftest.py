"""Notification fixtures: the scripted receiver on 127.0.0.1, settings that allow loopback endpoints, a platform
api_client and an app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.receiver import Receiver, serve_receiver

from starforge_dag.api import create_app
from starforge_dag.core.models import App
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

API_TOKEN = "api-token-for-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as state:
        yield state


@pytest.fixture
def loopback_settings(settings: Settings) -> Settings:
    """The tests' settings with loopback endpoints allowed (the receiver is on 127.0.0.1)."""
    return settings.model_copy(update={"webhook_allowed_cidrs": "127.0.0.0/8"})


@pytest.fixture
def platform(loopback_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(loopback_settings), headers={"Authorization": f"Bearer {API_TOKEN}"}) as api_client:
        yield api_client


@pytest.fixture
def web(build_store: BuildStore) -> App:
    return build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main")
