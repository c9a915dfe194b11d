"""Migration 0011_previews on a database with history: existing builds and feed changes are production's,
apps keep previews off, and it downgrades back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from starforge_dag.store.db import alembic_config

PREVIOUS = "0009_commit_details"


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'acme', CURRENT_TIMESTAMP)"))
        conn.execute(
            sa.text(
                "INSERT INTO apps (id, workspace_id, name, repo_url, branch, root_dir, watch_paths, cancel_running, "
                "auto_build, created_at) VALUES (1, 1, 'web', 'file:///r', 'main', '', '[]', false, true, "
                "CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO builds (id, app_id, ref, commit_sha, status, trigger, rewind, no_cache, held_by_pin, "
                "image_ref, image_digest, created_at, updated_at) VALUES (1, 1, 'main', :sha, 'succeeded', 'push', "
                "false, false, false, 'r/acme/web:1', 'sha256:1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"sha": "a" * 40},
        )
        conn.execute(
            sa.text(
                "INSERT INTO desired_changes (revision, app_id, workspace, app, build_id, image_ref, image_digest, "
                "commit_sha, reason, note, actor, pinned, at) VALUES (1, 1, 'acme', 'web', 1, 'r/acme/web:1', "
                "'sha256:1', :sha, 'build', 'n', 'test', false, CURRENT_TIMESTAMP)"
            ),
            {"sha": "a" * 40},
        )


def _check_round_trip(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, PREVIOUS)
    engine = sa.create_engine(url)
    try:
        _seed(engine)
        command.upgrade(cfg, "0011_previews")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT environment, pr_number, fork FROM builds")).one() == (
                "production",
                None,
                False,
            )
            assert conn.execute(sa.text("SELECT environment FROM desired_changes")).scalar_one() == "production"
            assert conn.execute(sa.text("SELECT previews, preview_label FROM apps")).one() == (False, None)
            assert conn.execute(sa.text("SELECT count(*) FROM previews")).scalar_one() == 0
        command.downgrade(cfg, PREVIOUS)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM desired_changes")).scalar_one() == 1
            columns = {c["name"] for c in sa.inspect(conn).get_columns("builds")}
            assert "environment" not in columns and "commit_message" in columns
        command.upgrade(cfg, "0011_previews")
    finally:
        engine.dispose()


def test_sqlite_history_becomes_production_and_downgrades(tmp_path: Path) -> None:
    _check_round_trip(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.integration
def test_postgres_history_becomes_production_and_downgrades(postgres_database: Callable[[str], str]) -> None:
    _check_round_trip(postgres_database("starforge_previews_migration"))
