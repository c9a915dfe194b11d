"""Issue 7.5 under load: 1,000 signed deliveries (50 apps x 4 commits, 30% redelivered, 50 at a time) through the
real API on Postgres make exactly one build per commit, answer every delivery, and never a 5xx."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.storm import commit_id, plan, register_apps, send, serve

from starforge_dag.core.states import BuildState
from starforge_dag.settings import Settings
from starforge_dag.store import open_store
from starforge_dag.store.schema import webhook_deliveries

pytestmark = pytest.mark.integration
APPS, COMMITS = 50, 4


def test_storm_of_deliveries_makes_one_build_per_commit(tmp_path: Path, postgres_database) -> None:
    url = postgres_database("starforge_storm")
    settings = Settings(home=tmp_path, database_url=url, github_webhook_secret="storm-secret", api_token="t")
    store = open_store(url)
    register_apps(store, APPS)
    deliveries = plan(APPS, COMMITS, deliveries=1000, redelivered=0.3)

    with serve(settings) as base_url:
        result = send(base_url, "storm-secret", deliveries, concurrency=50)

    assert len(deliveries) == 1000 and result.server_errors == 0
    assert set(result.statuses) <= {200, 202}, Counter(result.statuses)
    builds = store.list_builds(limit=10_000)
    by_commit = Counter((b.app, b.commit_sha) for b in builds)
    assert len(builds) == APPS * COMMITS and set(by_commit.values()) == {1}
    commit_of = {b.id: (b.app, b.commit_sha) for b in builds}
    for delivery, answer in zip(deliveries, result.answers, strict=True):  # nothing lost: each answer names its build
        assert [commit_of[i] for i in answer["builds"]] == [(delivery.app, delivery.commit)]
    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)).scalar()
    assert recorded == len({d.delivery_id for d in deliveries})
    newest = {(f"app-{a}", commit_id(a, COMMITS - 1)) for a in range(APPS)}
    for build in builds:  # whatever the arrival order, only each app's newest commit is left to build
        want = BuildState.QUEUED if (build.app, build.commit_sha) in newest else BuildState.SUPERSEDED
        assert build.status == want, (build.app, build.commit_sha, build.status, build.error)
