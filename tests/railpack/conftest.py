"""Fixture apps for the planner tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.files import write_files
from support.railpack_apps import APPS, write_app


@pytest.fixture
def fixture_app(tmp_path: Path) -> Callable[[str], Path]:
    """Write a named fixture app and return its directory."""
    return lambda name: write_app(name, tmp_path)


@pytest.fixture
def fixture_app_names() -> list[str]:
    """Every fixture app, by name."""
    return sorted(APPS)


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Write an ad-hoc app from {path: content}."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "app"
        root.mkdir(exist_ok=True)
        return write_files(root, files)

    return write
