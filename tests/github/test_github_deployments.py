"""GitHub deployments through the outbox: one per desired-state change, statuses in order, nothing duplicated or
lost under faults, nothing queued without an App."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from support.builds import image_of

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.definitions import resources_for
from starforge_dag.github.deployments import send_deployments
from starforge_dag.github.statuses import SendReport, StatusStyle
from starforge_dag.sensors.github import deployment_sensor
from starforge_dag.store import schema as t
from starforge_dag.store.deployments import deployment_outbox, record_deployment
from starforge_dag.store.rows import aware

PAGE = "https://starforge.example.invalid/page/"


@pytest.fixture
def github_database(request: pytest.FixtureRequest) -> str | None:
    """SQLite, or a fresh Postgres database where a test asks for it (the concurrent case)."""
    wanted = getattr(request, "param", "sqlite")
    return request.getfixturevalue("postgres_database")("starforge_gh") if wanted == "postgres" else None


def _built(world, linked, sha: str) -> int:
    """A build of the commit carried to success: desired state moves to its image."""
    build = world.store.enqueue(linked.app, "main", sha).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        world.store.transition(build.id, state, state.value, "test")
    ref, digest = image_of(build.id)
    outcome = world.store.succeed(build.id, ref, digest, "image pushed", "test")
    assert outcome.moved
    return build.id


def _states(deployment) -> list[str]:
    return [s.state for s in deployment.statuses]


def _rows(world) -> list[sa.Row]:
    with world.store.engine.connect() as conn:
        return conn.execute(sa.select(deployment_outbox).order_by(deployment_outbox.c.id)).all()


def test_a_production_build_becomes_a_deployment_reported_in_progress_then_success_with_its_page(github_world):
    world = github_world
    linked, sha = world.linked_app("web")
    build_id = _built(world, linked, sha)

    reports = world.drain_deployments()

    (deployment,) = world.emulator.deployments_for(linked.repo.id)
    assert (deployment.sha, deployment.ref, deployment.environment) == (sha, sha, "production")
    assert deployment.production and not deployment.transient
    assert deployment.payload["starforge"] == {
        "workspace": "acme",
        "app": "web",
        "revision": world.store.latest_revision(),
        "build_id": build_id,
        "reason": "build",
    }
    assert _states(deployment) == ["in_progress", "success"]
    final = deployment.statuses[-1]
    assert final.description == f"production of acme/web runs build {build_id}"
    for url in (final.log_url, final.environment_url):
        assert url.startswith(PAGE)
        assert world.settings.page_links().build_of(url.removeprefix(PAGE), utcnow()) == build_id
    assert sum(r.sent for r in reports) == 1
    (row,) = _rows(world)
    assert (row.outcome, row.final_state, row.deployment_id) == ("sent", "success", deployment.id)


def test_rollback_pin_and_unpin_are_deployments_too_and_each_replaces_the_one_before(github_world):
    world = github_world
    linked, first_sha = world.linked_app("web")
    first = _built(world, linked, first_sha)
    second_sha = linked.git.commit({"app.py": "2"}, "second")
    _built(world, linked, second_sha)
    world.store.rollback(linked.app.id, first, "ada")
    world.store.pin(linked.app.id, "ada")
    world.store.unpin(linked.app.id, "ada")

    world.drain_deployments()

    deployments = world.emulator.deployments_for(linked.repo.id, "production")
    reasons = [d.payload["starforge"]["reason"] for d in deployments]
    assert reasons == ["build", "build", "rollback", "pin", "unpin"]
    assert [d.sha for d in deployments] == [first_sha, second_sha, first_sha, first_sha, first_sha]
    revisions = [d.payload["starforge"]["revision"] for d in deployments]
    assert revisions == sorted(revisions) and len(set(revisions)) == 5  # created in the order of the changes
    for replaced in deployments[:-1]:
        assert _states(replaced) == ["in_progress", "success", "inactive"]
    assert _states(deployments[-1]) == ["in_progress", "success"]


def test_a_deployment_whose_image_was_deleted_before_it_was_reported_fails(github_world):
    world = github_world
    linked, sha = world.linked_app("web")
    build_id = _built(world, linked, sha)
    with world.store.engine.begin() as conn:  # retention got there while GitHub was unreachable
        conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(image_deleted_at=utcnow()))

    world.drain_deployments()

    (deployment,) = world.emulator.deployments_for(linked.repo.id)
    assert _states(deployment) == ["in_progress", "failure"]
    assert deployment.statuses[-1].description == f"The image of build {build_id} was deleted before it was deployed"
    assert deployment.statuses[-1].log_url.startswith(PAGE)
    assert _rows(world)[0].final_state == "failure"


def test_a_closed_preview_s_deployment_becomes_inactive_and_nothing_new_is_created(github_world):
    world = github_world
    linked, sha = world.linked_app("web")
    build_id = _built(world, linked, sha)
    revision = world.store.latest_revision()
    with world.store.engine.begin() as conn:
        record_deployment(conn, linked.app.id, "pr-7", revision, build_id, sha, "build")
    world.drain_deployments()
    with world.store.engine.begin() as conn:
        record_deployment(conn, linked.app.id, "pr-7", revision + 1, build_id, sha, "preview_closed")

    world.drain_deployments()

    (preview,) = world.emulator.deployments_for(linked.repo.id, "pr-7")
    assert preview.transient and not preview.production
    assert _states(preview) == ["in_progress", "success", "inactive"]
    assert preview.statuses[-1].description == "Preview pr-7 closed"
    (production,) = world.emulator.deployments_for(linked.repo.id, "production")
    assert _states(production) == ["in_progress", "success"]  # another environment: left alone


def test_a_create_whose_answer_was_lost_is_found_on_retry_instead_of_created_twice(github_world):
    world = github_world
    linked, sha = world.linked_app("web")
    _built(world, linked, sha)
    world.app().installation_token(linked.installation_id)  # the fault hits the create, not the token
    world.emulator.faults.scripted = ["lost_answer"]

    first = send_deployments(world.deployments, world.app(), StatusStyle(), utcnow)
    assert first.deferred == 1 and world.emulator.deployments_for(linked.repo.id) != []
    with world.store.engine.begin() as conn:  # retry now rather than after the backoff
        conn.execute(deployment_outbox.update().values(next_attempt_at=utcnow()))
    world.drain_deployments()

    (deployment,) = world.emulator.deployments_for(linked.repo.id)
    assert _states(deployment) == ["in_progress", "success"]
    listed = [r for r in world.emulator.requests if r[0] == "GET" and r[1].endswith("/deployments")]
    assert listed and all(code == 200 for *_, code in listed)


def test_a_change_waits_until_the_one_before_it_reached_github_and_retry_after_is_honoured(github_world):
    world = github_world
    linked, sha = world.linked_app("web")
    first = _built(world, linked, sha)
    second = _built(world, linked, linked.git.commit({"v": "2"}, "second"))
    world.app().installation_token(linked.installation_id)
    world.emulator.faults.scripted = ["5xx"]

    report = send_deployments(world.deployments, world.app(), StatusStyle(), utcnow)

    assert report.deferred == 1 and world.emulator.deployments_for(linked.repo.id) == []
    head, waiting = _rows(world)
    assert (head.attempts, head.outcome) == (1, None) and "502" in head.last_error
    assert (waiting.step, waiting.attempts, waiting.last_error) == ("create", 0, None)  # never tried
    with world.store.engine.begin() as conn:
        conn.execute(deployment_outbox.update().values(next_attempt_at=utcnow()))
    world.emulator.faults.retry_after_s = 30
    world.emulator.faults.scripted = ["rate_limit"]
    report = send_deployments(world.deployments, world.app(), StatusStyle(), utcnow)
    assert report.deferred == 1 and report.sent == 0
    head = _rows(world)[0]
    assert head.attempts == 1  # GitHub's rate limit is not the row's failure
    assert (aware(head.next_attempt_at) - utcnow()).total_seconds() > 20  # waits out retry-after
    with world.store.engine.begin() as conn:
        conn.execute(deployment_outbox.update().values(next_attempt_at=utcnow()))

    world.drain_deployments()

    builds = [d.payload["starforge"]["build_id"] for d in world.emulator.deployments_for(linked.repo.id)]
    assert builds == [first, second]


def test_without_an_app_nothing_is_sent_and_nothing_stays_queued(github_world, dagster_instance, monkeypatch):
    world = github_world
    linked, sha = world.linked_app("web")
    _built(world, linked, sha)
    plain = world.store.add_app("acme", "public", linked.app.repo_url, "main")  # not linked to the App
    world.store.enqueue(plain, "main", sha)
    assert len(_rows(world)) == 1  # the linked app's change only

    monkeypatch.delenv("STARFORGE_GITHUB_APP_PRIVATE_KEY")
    unconfigured = world.settings.model_copy(update={"github_app_private_key": SecretStr("")})
    with dg.build_sensor_context(instance=dagster_instance, resources=resources_for(unconfigured)) as context:
        result = deployment_sensor(context)

    assert "no GitHub App configured" in result.skip_message and "dropped 1" in result.skip_message
    assert world.deployments.unsent(10) == []
    assert world.emulator.deployments_for(linked.repo.id) == []


def test_the_sensor_sends_the_queued_deployment(github_world, dagster_instance):
    world = github_world
    linked, sha = world.linked_app("web")
    _built(world, linked, sha)
    with dg.build_sensor_context(instance=dagster_instance, resources=resources_for(world.settings)) as context:
        result = deployment_sensor(context)
    assert "sent 1" in result.skip_message
    (deployment,) = world.emulator.deployments_for(linked.repo.id)
    assert _states(deployment) == ["in_progress", "success"]


def _two_builds(world, linked) -> tuple[int, int]:
    first = _built(world, linked, world.head(linked))
    second = _built(world, linked, linked.git.commit({"v": "2"}, "second"))
    return first, second


@pytest.mark.parametrize(
    "github_database", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)], indirect=True
)
def test_20_concurrent_apps_deployments_end_right_and_once_while_github_fails_30_percent(github_world):
    world = github_world
    world.emulator.faults.fail_fraction = 0.3
    world.emulator.faults.kinds = ("5xx", "rate_limit", "lost_answer")
    linked = [world.linked_app(f"svc{n}")[0] for n in range(20)]

    stop = threading.Event()
    reports: list[SendReport] = []
    style = resources_for(world.settings)["github"].style()  # type: ignore[attr-defined]

    def sender() -> None:
        while not stop.is_set():
            reports.append(send_deployments(world.deployments, world.app(), style, utcnow))
            time.sleep(0.02)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        with ThreadPoolExecutor(20) as pool:
            built = list(pool.map(lambda item: _two_builds(world, item), linked))
    finally:
        stop.set()
        thread.join()
    reports += world.drain_deployments(deadline_s=180)

    faults = [r for r in world.emulator.requests if r[2] in (403, 429, 502)]
    assert len(faults) >= 5  # the faults really happened
    assert sum(r.given_up for r in reports) == 0
    assert world.deployments.unsent(1) == []
    for item, (first, second) in zip(linked, built):
        deployments = world.emulator.deployments_for(item.repo.id)
        assert [d.payload["starforge"]["build_id"] for d in deployments] == [first, second], item.app.name
        old, new = deployments
        assert _states(old) == ["in_progress", "success", "inactive"], item.app.name
        assert _states(new) == ["in_progress", "success"], item.app.name
