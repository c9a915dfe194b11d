"""Issue 7.6: the build store's database refusing connections for 5 s mid-build does not fail the build."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa
from support.pipeline import DOCKERFILE, Pipeline, RunInThread, watched_fake_backend
from support.tcpproxy import TcpProxy

from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.store import open_store

pytestmark = pytest.mark.integration
OUTAGE_S = 5.0


@pytest.fixture
def proxied_postgres(postgres_database) -> Iterator[tuple[str, TcpProxy]]:
    """A scratch database reached only through a TCP proxy this test can take down."""
    direct = sa.make_url(postgres_database("starforge_outage"))
    with TcpProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        yield direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy


def test_build_succeeds_through_a_five_second_database_outage(pipeline: Pipeline, proxied_postgres, git_repo):
    url, proxy = proxied_postgres
    pipeline = pipeline.using(pipeline.settings.model_copy(update={"database_url": url}))
    store = open_store(url)
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    app = store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", sha)["builds"][0]
    build_service, started = watched_fake_backend(step_delay_s=0.5)
    resources = pipeline.resources(build_service=build_service)
    tick = pipeline.tick(resources)
    assert isinstance(tick, dg.SensorResult)
    pipeline.instance.add_dynamic_partitions("apps", ["acme.web"])

    run = RunInThread(tick.run_requests[0], pipeline.instance, resources)
    assert started.wait(60)
    proxy.down()
    back = threading.Timer(OUTAGE_S, proxy.up)
    back.start()
    result = run.join(180)
    back.join()

    assert proxy.refused > 0, "the outage never reached the build: the test proved nothing"
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == [], "the build waited out the outage by re-running steps, not by retrying its database calls"
    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED
    assert BuildState.FAILED not in [t.to_state for t in store.transitions(build_id)]
    assert store.desired_state(app.id).build_id == build_id
    with open_log_store(pipeline.settings.log_store_dsn, url) as logs:
        lines = logs.read(build_id, limit=10_000)
    assert [line.seq for line in lines] == list(range(len(lines)))
    assert lines[-1].text.startswith(f"pushed 127.0.0.1:5000/apps/acme/web:{sha}")
