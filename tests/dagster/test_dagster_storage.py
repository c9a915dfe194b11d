"""Dagster's storage from the instance files: one small connection pool per process, safe across restarts and forks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from starforge_dag.dagster_storage import PooledEventLogStorage, PooledRunStorage
from starforge_dag.dev.instance import INSTANCE_FILES

pytestmark = pytest.mark.integration


@dg.op
def probe() -> None:
    pass


@dg.job
def probe_job() -> None:
    probe()


PROBE_JOB = probe_job


def instance_home(tmp_path: Path, storage: dict) -> Path:
    config = yaml.safe_load(INSTANCE_FILES["postgres"].read_text())
    config["storage"] = storage
    home = tmp_path / f"home-{len(list(tmp_path.iterdir()))}"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


@contextmanager
def instance_of(tmp_path: Path, storage: dict | None = None) -> Iterator[dg.DagsterInstance]:
    if storage is None:
        storage = yaml.safe_load(INSTANCE_FILES["postgres"].read_text())["storage"]
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path, storage))) as instance:
        yield instance


def count_connects(*engines: sa.engine.Engine) -> list[int]:
    opened = [0]

    def on_connect(*_args: object) -> None:
        opened[0] += 1

    for engine in {id(e): e for e in engines}.values():
        sa.event.listen(engine, "connect", on_connect)
    return opened


def engines_of(instance: dg.DagsterInstance) -> list[sa.engine.Engine]:
    return [instance.run_storage._engine, instance.event_log_storage._engine, instance.schedule_storage._engine]  # type: ignore[attr-defined]


def work(instance: dg.DagsterInstance, times: int) -> None:
    """What a build run and the daemon do over and over: runs read and written, events stored and read."""
    for _ in range(times):
        run = instance.create_run_for_job(PROBE_JOB)
        instance.report_engine_event("storage check", run)
        assert instance.get_run_by_id(run.run_id) is not None
        assert instance.all_logs(run.run_id)
        instance.get_ticks("origin", "selector")


@pytest.fixture
def pg_env(dagster_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STARFORGE_DAGSTER_PG_URL", dagster_postgres_url)
    return dagster_postgres_url


def test_the_instance_files_keep_a_few_connections_open_where_dagster_opens_one_per_query(tmp_path, pg_env):
    with instance_of(tmp_path) as pooled:
        assert isinstance(pooled.run_storage, PooledRunStorage)
        assert isinstance(pooled.event_log_storage, PooledEventLogStorage)
        engines = engines_of(pooled)
        assert len({id(e) for e in engines}) == 1, "run, event-log and schedule storage share one pool"
        opened = count_connects(*engines)
        work(pooled, 20)
        assert 1 <= opened[0] <= 3

    stock = {"postgres": {"postgres_url": {"env": "STARFORGE_DAGSTER_PG_URL"}}}
    with instance_of(tmp_path, stock) as unpooled:
        opened = count_connects(*engines_of(unpooled))
        work(unpooled, 20)
        assert opened[0] >= 100  # the baseline this storage exists for: a connection for every query


def test_an_instance_rebuilt_from_its_reference_is_pooled_too(tmp_path, pg_env):
    """Run processes and sensor evaluations build their instance from the daemon's reference."""
    with instance_of(tmp_path) as instance:
        with dg.DagsterInstance.from_ref(instance.get_ref()) as rebuilt:
            assert isinstance(rebuilt.run_storage, PooledRunStorage)
            opened = count_connects(*engines_of(rebuilt))
            work(rebuilt, 5)
            assert opened[0] <= 3


def test_disposing_the_instance_closes_its_connections(tmp_path, pg_env):
    with instance_of(tmp_path) as instance:
        work(instance, 2)
        engine = engines_of(instance)[0]
        assert engine.pool.checkedin() >= 1
    assert engine.pool.checkedin() == 0


def test_connections_postgres_ended_are_replaced_before_use(tmp_path, pg_env):
    """A restarted (or failed-over) Postgres ends every open connection: the next query reconnects, nothing fails."""
    admin = sa.create_engine(pg_env, poolclass=sa.pool.NullPool)
    with instance_of(tmp_path) as instance:
        work(instance, 2)
        database = sa.engine.make_url(pg_env).database
        with admin.connect() as conn:
            ended = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar_one()
        assert ended >= 1
        work(instance, 2)
    admin.dispose()


def test_a_forked_process_never_uses_its_parents_connections(tmp_path, pg_env):
    """Celery workers fork a process per run: parent and child must not share a socket."""
    with instance_of(tmp_path) as instance:
        engine = engines_of(instance)[0]
        with engine.connect() as conn:
            parent_backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                with engine.connect() as conn:
                    backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                os.write(write, str(backend).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        child_backend = int(os.read(read, 64) or b"0")
        os.close(read)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert child_backend and child_backend != parent_backend
        with engine.connect() as conn:  # the parent's connection survived the child
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == parent_backend


def test_the_pool_is_configurable_and_rejects_what_is_not_a_number(tmp_path, pg_env):
    storage = yaml.safe_load(INSTANCE_FILES["postgres"].read_text())["storage"]
    storage["custom"]["config"].update(pool_size=1, max_overflow=0)
    with instance_of(tmp_path, storage) as instance:
        pool = engines_of(instance)[0].pool
        assert (pool.size(), pool._max_overflow) == (1, 0)  # type: ignore[attr-defined]
        work(instance, 2)
    storage["custom"]["config"]["pool_size"] = "many"
    with pytest.raises(dg.DagsterInvalidConfigError):
        with instance_of(tmp_path, storage):
            pass
