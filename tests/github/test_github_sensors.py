"""The GitHub sensors as the daemon ticks them: they call the Dagster-free sender and reconciler."""

from __future__ import annotations

import dagster as dg
from pydantic import SecretStr

from starforge_dag.definitions import resources_for
from starforge_dag.sensors.github import commit_status_sensor, github_reconcile_sensor_every


def _tick(sensor, world, instance, settings=None):
    resources = resources_for(settings or world.settings)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:  # nested resources open here
        return sensor(context)


def test_status_sensor_sends_the_queued_status(github_world, dagster_instance):
    world = github_world
    linked, sha = world.linked_app("web")
    world.store.enqueue(linked.app, "main", sha)
    result = _tick(commit_status_sensor, world, dagster_instance)
    assert isinstance(result, dg.SkipReason) and "sent 1" in result.skip_message
    (status,) = world.emulator.statuses_for(linked.repo.id, sha)
    assert (status.state, status.description) == ("pending", "Queued")


def test_reconcile_sensor_queues_a_head_whose_webhook_was_lost(github_world, dagster_instance):
    world = github_world
    linked, _ = world.linked_app("web")
    world.emulator.drop_fraction = 1.0
    world.emulator.drop_redeliveries = True  # the redelivery the sensor asks for is lost as well
    sha = world.push(linked, {"x": "1"})
    result = _tick(github_reconcile_sensor_every(30), world, dagster_instance)
    assert isinstance(result, dg.SkipReason) and "redelivered 1" in result.skip_message
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert (build.commit_sha, build.trigger) == (sha, "reconcile")


def test_sensors_explain_when_no_app_is_configured(github_world, dagster_instance, monkeypatch):
    monkeypatch.delenv("STARFORGE_GITHUB_APP_PRIVATE_KEY")
    unconfigured = github_world.settings.model_copy(update={"github_app_private_key": SecretStr("")})
    result = _tick(commit_status_sensor, github_world, dagster_instance, unconfigured)
    assert "no GitHub App configured" in result.skip_message


def test_reconcile_sensor_keeps_the_last_app_it_checked_as_its_cursor(github_world, dagster_instance):
    world = github_world
    world.linked_app("web")
    second = world.linked_app("worker")[0].app.id
    with dg.build_sensor_context(instance=dagster_instance, resources=resources_for(world.settings)) as context:
        result = github_reconcile_sensor_every(30)(context)
        assert "checked 2 apps, left 0 for the next pass" in result.skip_message
        assert context.cursor == str(second)


def test_checks_sensor_releases_a_waiting_build_whose_event_was_lost_and_keeps_its_cursor(
    github_world, dagster_instance
):
    from starforge_dag.core.states import BuildState
    from starforge_dag.sensors.checks import checks_sensor_for

    world = github_world
    linked, _ = world.linked_app("web")
    app = world.store.update_app(linked.app.id, {"wait_for_checks": True})
    sha = world.push(linked, {"x": "1"})
    suite = world.emulator.add_check_suite(linked.repo.id, sha)
    world.emulator.complete_check_suite(suite, "success", send=False)  # no event: only the sensor can tell
    sensor = checks_sensor_for(7200, 60)
    resources = resources_for(world.settings)
    with dg.build_sensor_context(instance=dagster_instance, resources=resources) as context:
        result = sensor(context)
        (build,) = world.store.list_builds(app_id=app.id)
        assert isinstance(result, dg.SkipReason) and f"queued [{build.id}]" in result.skip_message
        assert build.status == BuildState.QUEUED
        assert context.cursor == "0"  # every waiting build was looked at: the next tick starts from the first
