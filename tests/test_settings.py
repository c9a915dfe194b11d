"""Settings is the one reader of the environment; secrets leave it only as the names of their variables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from starforge_dag.definitions import resources_for
from starforge_dag.settings import Settings


def test_settings_for_a_child_process_ignore_this_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARFORGE_API_TOKEN", "token-of-the-parent")
    monkeypatch.setenv("STARFORGE_BUILD_TIMEOUT_S", "99")
    child = Settings.from_environ({"STARFORGE_BUILD_TIMEOUT_S": "12", "UNRELATED": "x"})
    assert child.build_timeout_s == 12 and child.api_token.get_secret_value() == ""
    assert Settings().build_timeout_s == 99  # and reading the real environment is unchanged afterwards


def test_secrets_and_dsns_reach_resources_by_variable_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path))
    monkeypatch.setenv("STARFORGE_BUILD_BACKEND", "buildkit")
    monkeypatch.setenv("STARFORGE_REGISTRY_PASSWORD", "registry-password-1")
    monkeypatch.setenv("STARFORGE_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    resources = resources_for(Settings())
    assert resources["registry"].password == dg.EnvVar("STARFORGE_REGISTRY_PASSWORD")
    assert resources["build_service"].registry.password == dg.EnvVar("STARFORGE_REGISTRY_PASSWORD")
    assert resources["build_store"].database_url == dg.EnvVar("STARFORGE_DATABASE_URL")


def test_a_secret_given_as_a_value_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STARFORGE_REGISTRY_PASSWORD", "the-real-one")
    with pytest.raises(ValueError, match="STARFORGE_REGISTRY_PASSWORD"):
        resources_for(Settings(home=tmp_path, build_backend="fake", registry_password="typed-into-code"))
