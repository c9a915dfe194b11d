"""Settings is the one reader of the environment; secrets leave it only as the names of their variables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from pydantic import Field

from starforge_dag.definitions import resources_for
from starforge_dag.settings import Settings, configuration_page, main

CONFIGURATION_PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


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


def test_the_configuration_page_has_a_row_per_setting_with_its_default_and_description() -> None:
    class WithRetries(Settings):
        retry_limit: int = Field(default=3, description="How many times a | b is tried.")
        pause_s: float = Field(default=2.0, description="Pause between tries.")

    rows = configuration_page(WithRetries).splitlines()
    assert "| `STARFORGE_RETRY_LIMIT` | `3` | How many times a \\| b is tried. |" in rows
    assert "| `STARFORGE_PAUSE_S` | `2` | Pause between tries. |" in rows
    assert "| `STARFORGE_DATABASE_URL` | none | " in "\n".join(rows)  # unset defaults read as none
    assert "| `STARFORGE_HOME` | `.starforge` | " in "\n".join(rows)


def test_a_setting_without_a_description_stops_the_page() -> None:
    class Undocumented(Settings):
        mystery: str = "x"

    with pytest.raises(ValueError, match=r"Settings\.mystery has no description"):
        configuration_page(Undocumented)


def test_the_check_fails_until_the_page_is_regenerated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "configuration.md"
    assert main(["--docs", str(page), "--check"]) == 1  # missing
    assert main(["--docs", str(page)]) == 0
    assert main(["--docs", str(page), "--check"]) == 0
    page.write_text(page.read_text().replace("`3600`", "`60`"))
    assert main(["--docs", str(page), "--check"]) == 1
    assert f"--docs {page}" in capsys.readouterr().err


def test_the_checked_in_configuration_page_is_the_generated_one() -> None:
    assert CONFIGURATION_PAGE.read_text() == configuration_page()
