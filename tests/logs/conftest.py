"""Log store fixtures: every backend behind one `log_store` fixture, real engines only."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from starforge_dag.logs import ClickHouseLogStore, LogStoreBackend, SqlLogStore

_build_ids = itertools.count(1)


@pytest.fixture
def build_id() -> int:
    """A fresh build per test, so tests sharing a session database never see each other's lines."""
    return next(_build_ids)


@pytest.fixture(scope="session")
def pg_url(postgres_database) -> str:
    """A throwaway Postgres database for this session, dropped at the end."""
    return postgres_database("starforge_logs")


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """chdb serves one data path per process, so the whole session shares this one."""
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'ch'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'starforge.db'}"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("chdb", marks=pytest.mark.integration),
    ]
)
def log_store(request: pytest.FixtureRequest) -> Iterator[LogStoreBackend]:
    backend: LogStoreBackend
    if request.param == "sqlite":
        backend = SqlLogStore(request.getfixturevalue("sqlite_url"))
    elif request.param == "postgres":
        backend = SqlLogStore(request.getfixturevalue("pg_url"))
    else:
        backend = ClickHouseLogStore(request.getfixturevalue("chdb_dsn"))
    with backend:
        yield backend
