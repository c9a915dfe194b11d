"""The build store on SQLite and on real Postgres, one fresh database per test."""

from __future__ import annotations

import pytest

from starforge_dag.store import BuildStore, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def build_store(request: pytest.FixtureRequest, tmp_path) -> BuildStore:
    """A database of its own, not the session's emptied one: these tests add triggers and change the schema's data."""
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return open_store(request.getfixturevalue("postgres_database")("starforge_store"))
