"""DAGSTER_HOME under STARFORGE_HOME, seeded with the project's instance settings."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_FILES = {
    "embedded": PROJECT_ROOT / "dagster.yaml",
    "postgres": PROJECT_ROOT / "deploy/dagster-postgres.yaml",
    "celery": PROJECT_ROOT / "deploy/dagster-celery.yaml",
}
_HOMES = {"embedded": "dagster", "postgres": "dagster-postgres", "celery": "dagster-celery"}


def prepare_dagster_home(settings: Settings, postgres: bool = False, celery: bool = False) -> Path:
    """Celery run workers keep storage in Postgres too: `celery` wins over `postgres`."""
    variant = "celery" if celery else "postgres" if postgres else "embedded"
    home = settings.resolved_home / _HOMES[variant]
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_FILES[variant], home / "dagster.yaml")
    return home
