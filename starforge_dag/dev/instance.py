"""DAGSTER_HOME under STARFORGE_HOME, seeded with the project's instance settings."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def prepare_dagster_home(settings: Settings, postgres: bool = False) -> Path:
    home = settings.resolved_home / ("dagster-postgres" if postgres else "dagster")
    home.mkdir(parents=True, exist_ok=True)
    source = PROJECT_ROOT / ("deploy/dagster-postgres.yaml" if postgres else "dagster.yaml")
    shutil.copyfile(source, home / "dagster.yaml")
    return home
