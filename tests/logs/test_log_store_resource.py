"""The log_store resource: ops write a build's log through it and a re-executed build continues it."""

from __future__ import annotations

import dagster as dg
import pytest

from starforge_dag.core.models import ProgressLine
from starforge_dag.logs import SqlLogStore
from starforge_dag.resources.build_store import BuildStoreResource
from starforge_dag.resources.log_store import LogStoreResource


def write_lines(log_store: LogStoreResource, build_id: int, texts: list[str]) -> None:
    with log_store.writer(build_id) as writer:
        for text in texts:
            writer.write(ProgressLine(stream="stdout", text=text))


def test_a_resumed_build_continues_its_log(sqlite_url: str, build_id: int) -> None:
    log_store = LogStoreResource(dsn="sql", build_store=BuildStoreResource(database_url=sqlite_url))
    write_lines(log_store, build_id, ["clone", "plan"])
    write_lines(log_store, build_id, ["build", "push"])

    with log_store.open() as backend:
        assert [(ln.seq, ln.text) for ln in backend.read(build_id)] == [
            (0, "clone"),
            (1, "plan"),
            (2, "build"),
            (3, "push"),
        ]
        assert backend.last_seq(build_id) == 3
        assert [ln.seq for ln in backend.read(build_id, after_seq=1, limit=1)] == [2]
        assert isinstance(backend, SqlLogStore)


@pytest.mark.integration
def test_an_op_streams_its_log_to_clickhouse(chdb_dsn: str, sqlite_url: str, build_id: int) -> None:
    @dg.op
    def emit(log_store: LogStoreResource) -> int:
        write_lines(log_store, build_id, [f"line {i}" for i in range(500)])
        with log_store.open() as backend:
            return backend.last_seq(build_id)

    @dg.job
    def emit_job() -> None:
        emit()

    log_store = LogStoreResource(dsn=chdb_dsn, build_store=BuildStoreResource(database_url=sqlite_url))
    result = emit_job.execute_in_process(resources={"log_store": log_store})

    assert result.output_for_node("emit") == 499
    with log_store.open() as backend:
        assert [ln.text for ln in backend.read(build_id, limit=600)] == [f"line {i}" for i in range(500)]
