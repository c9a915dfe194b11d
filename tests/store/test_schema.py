"""The tables the code describes are the tables the migrations make, on SQLite and Postgres."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import starforge_dag.store.github  # noqa: F401 - its tables join the metadata
from starforge_dag.store import BuildStore
from starforge_dag.store.schema import metadata


def test_the_migrated_database_matches_the_schema_module(build_store: BuildStore) -> None:
    with build_store.engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLite cannot reflect expression indexes; alembic says so and skips them
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []
