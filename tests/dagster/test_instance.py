"""The shipped instance settings: queued runs, a per-workspace limit, run monitoring, Postgres variant."""

import dagster as dg
import yaml

from starforge_dag.dev.instance import PROJECT_ROOT, prepare_dagster_home
from starforge_dag.settings import Settings


def _limits(instance: dg.DagsterInstance) -> list[dict]:
    return instance.get_concurrency_config().run_queue_config.tag_concurrency_limits


def test_embedded_instance_queues_runs_and_limits_each_workspace(tmp_path):
    home = prepare_dagster_home(Settings(home=tmp_path))
    # Not the ephemeral `dagster_instance`: what is under test is the instance our shipped dagster.yaml makes.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert _limits(instance) == [
            {"key": "starforge/workspace", "value": {"applyLimitPerUniqueValue": True}, "limit": 4}
        ]
        assert instance.run_monitoring_enabled
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8


def test_postgres_variant_differs_only_in_storage():
    embedded = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    postgres = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster-postgres.yaml").read_text())
    assert postgres.pop("storage") == {
        "custom": {
            "module": "starforge_dag.dagster_storage",
            "class": "PooledPostgresStorage",
            "config": {"postgres_url": {"env": "STARFORGE_DAGSTER_PG_URL"}},
        }
    }
    assert postgres == embedded
