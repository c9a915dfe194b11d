"""Signed notifications end to end: events written with their transitions, delivered to a real receiver on
127.0.0.1 through scripted failures, verified there with the endpoint's secret by the spec's own library."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from support.receiver import Receiver

from starforge_dag.core.models import App, utcnow
from starforge_dag.core.notifications import DeliveryPolicy
from starforge_dag.core.states import BuildState
from starforge_dag.definitions import resources_for
from starforge_dag.notify import AddressPolicy, send_notifications
from starforge_dag.sensors.notifications import notification_sensor
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore
from starforge_dag.store.schema import notification_outbox, webhook_endpoints
from starforge_dag.store.transitions import locked_state, set_state
from starforge_dag.variables.crypto import SecretBox, key_file_keys, new_key

# Backoffs of 5-15 s, passed by moving the clock 20 s a pass: ten passes stay inside the 5 minutes a receiver
# accepts a signature's timestamp.
FAST = DeliveryPolicy(timeout_s=0.5, first_backoff_s=10, max_backoff_s=15, max_consecutive_failures=4)
LOOPBACK = AddressPolicy.parse(False, "127.0.0.0/8")


def _register(platform: TestClient, url: str, events: list[str] | None = None) -> dict:
    answer = platform.post(
        "/workspaces/acme/webhooks",
        json={
            "url": url,
            "events": events
            or [
                "build.queued",
                "build.started",
                "build.succeeded",
                "build.failed",
                "build.canceled",
                "desired_state.changed",
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _run_builds(build_store: BuildStore, app: App) -> None:
    """One build that succeeds (moving desired state), one that fails, one canceled while queued."""
    ok = build_store.enqueue(app, "main", "1" * 40, trigger="manual", actor="ada").build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        build_store.transition(ok.id, state, state.value, "run:test")
    build_store.succeed(ok.id, "127.0.0.1:5000/apps/acme/web:1", "sha256:" + "a" * 64, "pushed", "run:test")
    bad = build_store.enqueue(app, "main", "2" * 40, trigger="manual", actor="ada").build
    build_store.transition(bad.id, BuildState.CLONING, "cloning", "run:test")
    build_store.finish(bad.id, BuildState.FAILED, "RUN npm ci exited 1", "run:test", error_step="building")
    dropped = build_store.enqueue(app, "main", "3" * 40, trigger="manual", actor="ada").build
    build_store.request_cancel(dropped.id, "api", "not needed")


EXPECTED = [
    "build.queued",
    "build.started",
    "desired_state.changed",
    "build.succeeded",
    "build.queued",
    "build.started",
    "build.failed",
    "build.queued",
    "build.canceled",
]


class Clock:
    """Wall time moved forward at will, so backoffs pass without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def _drain(
    build_store: BuildStore, settings: Settings, now: Callable[[], datetime], policy: DeliveryPolicy, passes: int
):
    reports = []
    for _ in range(passes):
        reports.append(send_notifications(build_store, settings.secret_box().open, LOOPBACK, now, policy=policy))
        if isinstance(now, Clock):
            now.offset += timedelta(seconds=20)
    return reports


def test_every_event_arrives_complete_in_order_and_signed_through_5xx_timeouts_and_slow_answers(
    build_store: BuildStore, loopback_settings: Settings, platform: TestClient, receiver: Receiver, web: App
) -> None:
    endpoint = _register(platform, receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    receiver.script = [503, ("late", 1.5), ("slow", 0.2), 500, 502, ("slow", 0.3)]
    _run_builds(build_store, web)
    clock = Clock()
    _drain(build_store, loopback_settings, clock, FAST, passes=10)
    receiver.wait_for(len(EXPECTED) + 4)  # the late answer is written after the sender stopped waiting

    verifier = Webhook(endpoint["secret"])
    for item in receiver.received:  # every request, the refused ones too, is signed with the endpoint's secret
        verifier.verify(item.body, item.headers)
    accepted = [item for item in receiver.received if item.answered is not None and 200 <= item.answered < 300]
    messages = [json.loads(item.body) for item in accepted]
    assert [m["type"] for m in messages] == EXPECTED
    assert len({item.headers["webhook-id"] for item in accepted}) == len(EXPECTED)
    first_seen = list(dict.fromkeys(item.headers["webhook-id"] for item in receiver.received))
    assert first_seen == [item.headers["webhook-id"] for item in accepted]  # nothing overtook a message retried
    by_id: dict[str, set[bytes]] = {}
    for item in receiver.received:
        by_id.setdefault(item.headers["webhook-id"], set()).add(item.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())  # a retry sends the same bytes
    failed = next(m for m in messages if m["type"] == "build.failed")["data"]
    assert failed["app"] == "acme/web" and failed["error"] == "RUN npm ci exited 1"
    assert failed["error_step"] == "building" and failed["status"] == "failed"
    assert {"page_url", "explanation"} <= set(failed)
    moved = next(m for m in messages if m["type"] == "desired_state.changed")["data"]
    assert moved["revision"] == 1 and moved["image"] == "127.0.0.1:5000/apps/acme/web@sha256:" + "a" * 64

    log = platform.get(f"/workspaces/acme/webhooks/{endpoint['id']}/deliveries", params={"limit": 1000}).json()
    statuses = [entry["status_code"] for entry in reversed(log)]
    assert statuses[:4] == [503, None, 200, 500] and statuses.count(204) == len(EXPECTED) - 2
    assert "no answer within 0.5 s" in next(e["error"] for e in log if e["status_code"] is None)
    assert {entry["outcome"] for entry in log} == {"delivered"}
    (listed,) = platform.get("/workspaces/acme/webhooks").json()
    assert listed["enabled"] and listed["failures"] == 0 and "secret" not in listed


def test_an_endpoint_failing_again_and_again_is_disabled_with_the_reason_shown(
    build_store: BuildStore, loopback_settings: Settings, platform: TestClient, receiver: Receiver, web: App
) -> None:
    _register(platform, receiver.url)
    receiver.script = [503] * 10
    _run_builds(build_store, web)
    reports = _drain(build_store, loopback_settings, Clock(), FAST, passes=6)
    assert [r.disabled for r in reports] == [0, 0, 0, 1, 0, 0] and len(receiver.received) == 4
    (listed,) = platform.get("/workspaces/acme/webhooks").json()
    assert not listed["enabled"] and listed["disabled_at"] is not None
    assert "4 failed deliveries in a row" in listed["disabled_reason"] and "HTTP 503" in listed["disabled_reason"]
    with build_store.engine.connect() as conn:
        outcomes = conn.execute(sa.select(notification_outbox.c.outcome)).scalars().all()
    assert set(outcomes) == {"dropped"} and len(outcomes) == len(EXPECTED)
    build_store.enqueue(web, "main", "4" * 40, trigger="manual", actor="ada")  # a disabled endpoint hears nothing new
    with build_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notification_outbox)).scalar() == len(EXPECTED)


def test_outbox_rows_are_written_in_the_transition_s_own_transaction(
    build_store: BuildStore, platform: TestClient, receiver: Receiver, web: App
) -> None:
    _register(platform, receiver.url)
    _register(platform, receiver.url + "/failures-only", ["build.failed"])
    build = build_store.enqueue(web, "main", "1" * 40, trigger="manual", actor="ada").build

    def rows() -> list[tuple[int, str]]:
        with build_store.engine.connect() as conn:
            query = sa.select(notification_outbox.c.endpoint_id, notification_outbox.c.event)
            return [tuple(r) for r in conn.execute(query.order_by(notification_outbox.c.id))]

    assert rows() == [(1, "build.queued")]  # the second endpoint wants failures only
    with pytest.raises(RuntimeError), build_store.engine.begin() as conn:
        set_state(conn, build.id, locked_state(conn, build.id), BuildState.CLONING, "cloning", "run:test")
        inside = conn.execute(sa.select(sa.func.count()).select_from(notification_outbox)).scalar()
        assert inside == 2
        raise RuntimeError("the transition fails after writing")
    assert rows() == [(1, "build.queued")] and build_store.get_build(build.id).status == BuildState.QUEUED
    build_store.transition(build.id, BuildState.CLONING, "cloning", "run:test")
    build_store.transition(build.id, BuildState.PLANNING, "planning", "run:test")  # a phase, not an event
    build_store.finish(build.id, BuildState.FAILED, "broken", "run:test")
    assert rows() == [(1, "build.queued"), (1, "build.started"), (1, "build.failed"), (2, "build.failed")]


def test_the_send_time_check_refuses_an_address_no_longer_allowed(
    build_store: BuildStore, loopback_settings: Settings, platform: TestClient, receiver: Receiver, web: App
) -> None:
    endpoint = _register(platform, receiver.url, ["build.queued"])
    build_store.enqueue(web, "main", "1" * 40, trigger="manual", actor="ada")
    report = send_notifications(build_store, loopback_settings.secret_box().open, AddressPolicy(), utcnow, policy=FAST)
    assert report.failed == 1 and receiver.received == []
    (attempt,) = platform.get(f"/workspaces/acme/webhooks/{endpoint['id']}/deliveries").json()
    assert attempt["status_code"] is None and "127.0.0.1 is a loopback address" in attempt["error"]


def test_the_sensor_delivers_within_its_tick(
    build_store: BuildStore,
    loopback_settings: Settings,
    platform: TestClient,
    receiver: Receiver,
    web: App,
    dagster_instance: dg.DagsterInstance,
) -> None:
    endpoint = _register(platform, receiver.url, ["build.queued"])
    build_store.enqueue(web, "main", "1" * 40, trigger="manual", actor="ada")
    resources = resources_for(loopback_settings)
    with dg.build_sensor_context(instance=dagster_instance, resources=resources) as context:
        result = notification_sensor(context)
    assert isinstance(result, dg.SkipReason) and "delivered 1" in result.skip_message
    (item,) = receiver.received
    assert Webhook(endpoint["secret"]).verify(item.body, item.headers)["type"] == "build.queued"


def test_a_failed_build_s_notification_carries_its_page_link_and_its_explanation(
    build_store: BuildStore,
    loopback_settings: Settings,
    platform: TestClient,
    receiver: Receiver,
    web: App,
    dagster_instance: dg.DagsterInstance,
) -> None:
    settings = loopback_settings.model_copy(update={"public_url": "https://builds.example.com"})
    endpoint = _register(platform, receiver.url, ["build.failed"])
    bad = build_store.enqueue(web, "main", "2" * 40, trigger="manual", actor="ada").build
    build_store.transition(bad.id, BuildState.CLONING, "cloning", "run:test")
    build_store.finish(
        bad.id,
        BuildState.FAILED,
        'process "/bin/sh -c make" did not complete successfully: exit code: 2',
        "run:test",
        error_step="building",
    )
    with dg.build_sensor_context(instance=dagster_instance, resources=resources_for(settings)) as context:
        result = notification_sensor(context)
    assert isinstance(result, dg.SkipReason) and "delivered 1" in result.skip_message
    (item,) = receiver.received
    event = Webhook(endpoint["secret"]).verify(item.body, item.headers)
    assert event["type"] == "build.failed"
    page = event["data"]["page_url"]
    assert page.startswith("https://builds.example.com/page/")
    token = page.removeprefix("https://builds.example.com/page/")
    assert settings.page_links().build_of(token, utcnow()) == bad.id
    explanation = event["data"]["explanation"]
    assert explanation["cls"] == "run_failed" and "exit code 2" in explanation["title"], explanation


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://localhost:8080/hook", "host 'localhost' resolves to"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://[::ffff:10.1.2.3]/hook", "is a private address"),
        ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
        ("https://user:pw@hooks.example.com/", "may not hold credentials"),
        ("ftp://hooks.example.com/", "must be an https:// or http:// URL"),
    ],
)
def test_endpoints_that_lead_inside_are_refused_with_a_clear_4xx(api_client: TestClient, url: str, why: str) -> None:
    answer = api_client.post("/workspaces/acme/webhooks", json={"url": url, "events": ["build.failed"]})
    assert answer.status_code == 422, answer.text
    assert why in answer.json()["detail"] and answer.json()["detail"].startswith("url: ")
    assert api_client.get("/workspaces/acme/webhooks").json() == []


def test_unknown_events_are_refused(api_client: TestClient) -> None:
    answer = api_client.post(
        "/workspaces/acme/webhooks", json={"url": "https://1.1.1.1/", "events": ["build.exploded"]}
    )
    assert answer.status_code == 422 and "build.exploded" in answer.json()["detail"]


def test_a_key_rotation_reseals_endpoint_secrets(
    build_store: BuildStore, loopback_settings: Settings, platform: TestClient, receiver: Receiver
) -> None:
    secret = _register(platform, receiver.url)["secret"]
    old = loopback_settings.secret_box()
    rotated = SecretBox([new_key(), *key_file_keys(loopback_settings.resolved_home)])
    with build_store.engine.connect() as conn:
        before = conn.execute(sa.select(webhook_endpoints.c.secret_ciphertext)).scalar_one()
    build_store.rotate_secrets(rotated)
    with build_store.engine.connect() as conn:
        after = conn.execute(sa.select(webhook_endpoints.c.secret_ciphertext)).scalar_one()
    assert after != before and rotated.open(after) == old.open(before) == secret


def test_ids_beyond_the_database_s_range_are_the_client_s_mistake(api_client: TestClient) -> None:
    for path in ("/workspaces/acme/webhooks/99999999999/deliveries", "/workspaces/acme/tokens/99999999999"):
        answer = api_client.request("GET" if path.endswith("deliveries") else "DELETE", path)
        assert answer.status_code == 422, answer.text
