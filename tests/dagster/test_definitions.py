"""The whole Definitions object loads, with the same resource keys whatever the backend."""

import dagster as dg
import pytest

from starforge_dag.builders.fake import FakeBuilder, Outcome
from starforge_dag.builders.wiring import builder_for, docker_reachable, resolve_backend
from starforge_dag.buildkit.builder import BuildKitBuilder
from starforge_dag.definitions import defs, resources_for
from starforge_dag.resources.build_service import BuildService
from starforge_dag.resources.buildkit_service import BuildKitBuildService
from starforge_dag.resources.depot_service import DepotBuildService
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.settings import Settings

KEYS = {"build_service", "build_store", "log_store", "git", "registry", "planner", "github", "notifications"}


@pytest.mark.parametrize(
    "backend,adapter",
    [("fake", FakeBuildService), ("buildkit", BuildKitBuildService), ("depot", DepotBuildService)],
)
def test_definitions_load_with_each_backend(backend, adapter, monkeypatch, tmp_path):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path))
    monkeypatch.setenv("STARFORGE_BUILD_BACKEND", backend)
    loaded = defs()
    dg.Definitions.validate_loadable(loaded)

    assert set(loaded.resources) >= KEYS
    assert isinstance(loaded.resources["build_service"], adapter)
    assert isinstance(loaded.resources["build_service"], BuildService)
    job = loaded.resolve_job_def("build_job")
    assert {n.name for n in job.graph.node_defs} >= {
        "load_build",
        "clone_source",
        "inspect_repo",
        "dockerfile_frontend",
        "railpack_frontend",
        "submit_build",
        "await_build",
        "publish_image",
    }
    assert {s.name for s in loaded.sensors} == {
        "build_queue_sensor",
        "build_reconcile_sensor",
        "build_run_failure_sensor",
        "build_run_canceled_sensor",
        "commit_status_sensor",
        "deployment_sensor",
        "github_reconcile_sensor",
        "checks_sensor",
        "desired_state_sensor",
        "notification_sensor",
    }
    (schedule,) = loaded.schedules
    assert schedule.name == "image_retention_schedule" and schedule.job_name == "collect_images_job"
    (spec,) = [s for s in loaded.resolve_all_asset_specs() if s.key == dg.AssetKey("app_image")]
    assert spec.partitions_def.name == "apps" and "dagster/kind/docker" in spec.tags


def test_auto_backend_picks_buildkit_only_when_the_daemon_answers(tmp_path):
    assert resolve_backend(Settings(build_backend="auto", buildkit_addr=f"docker://{tmp_path}/none.sock")) == "fake"
    with pytest.raises(ValueError, match="use buildkit, depot, fake or auto"):
        resolve_backend(Settings(build_backend="kaniko"))


def test_the_depot_token_reaches_the_resource_as_an_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path))
    monkeypatch.setenv("STARFORGE_BUILD_BACKEND", "depot")
    monkeypatch.setenv("STARFORGE_DEPOT_TOKEN", "depot-org-token-value")
    monkeypatch.setenv("STARFORGE_DEPOT_API_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("STARFORGE_DEPOT_PLATFORM", "arm64")
    service = defs().resources["build_service"]

    assert isinstance(service, DepotBuildService)
    assert isinstance(service.token, dg.EnvVar) and service.token == "STARFORGE_DEPOT_TOKEN"
    assert (service.api_url, service.platform) == ("http://127.0.0.1:1", "arm64")
    with service.process_config_and_initialize_cm() as initialized:  # it nests the build store and registry
        assert initialized.token == "depot-org-token-value"


def test_auto_backend_asks_the_socket_once_per_process(tmp_path):
    settings = Settings(home=tmp_path, build_backend="auto", buildkit_addr=f"docker://{tmp_path}/once.sock")
    asked = docker_reachable.cache_info().misses
    resources_for(settings)
    resources_for(settings)
    resolve_backend(settings)
    assert docker_reachable.cache_info().misses == asked + 1


def test_the_resources_and_build_dir_get_the_same_builder_from_the_settings(tmp_path):
    settings = Settings(
        home=tmp_path, build_backend="buildkit", buildkit_addr="tcp://10.0.0.9:1234", build_network="host"
    ).model_copy(update={"registry_username": "pusher"})
    from_resources = resources_for(settings)["build_service"].builder()
    from_cli, network = builder_for(settings, secret_lookup=lambda name: None)

    assert type(from_resources) is type(from_cli) is BuildKitBuilder
    assert (from_cli.address, from_cli.network_mode, network) == ("tcp://10.0.0.9:1234", "host", "host")
    assert (from_resources.address, from_resources.network_mode) == (from_cli.address, from_cli.network_mode)
    assert from_resources.registry_auth == from_cli.registry_auth and from_cli.registry_auth.username == "pusher"

    fake, network = builder_for(
        Settings(home=tmp_path, build_backend="fake", fake_outcome="user_error"), secret_lookup=dict().get
    )
    assert isinstance(fake, FakeBuilder) and fake.options.outcome == Outcome.USER_ERROR and network == "none"
