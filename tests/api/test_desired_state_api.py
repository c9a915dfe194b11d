"""The deployer's feed over a real API server: concurrent builds, rollbacks and pins read by long-polling consumers;
rollback refusals; image retention against the real registry."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from support.registries import manifest_exists, push_manifest

from starforge_dag.api import create_app
from starforge_dag.core.retention import RetentionPolicy
from starforge_dag.core.states import BuildState
from starforge_dag.deploy.operations import collect_images
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

API_TOKEN = "api-token-for-tests"
REGISTRY = "127.0.0.1:5000"


@contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    """One API instance (its own app and feed watcher) served by uvicorn on a free port."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "API server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    with _serve(settings) as url:
        yield url


def _api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=90, trust_env=False)


def _pushing(store: BuildStore, app, n: int):
    from datetime import UTC, datetime, timedelta

    when = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n)
    build = store.enqueue(app, "main", f"{n:040x}", trigger="manual", actor="ada", commit_time=when).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build.id, state, state.value, "run:test")
    return build


@pytest.mark.integration
def test_three_long_polling_consumers_see_every_change_once_in_order(api_url: str, build_store: BuildStore):
    apps = [build_store.add_app("acme", f"svc{i}", f"https://github.com/acme/svc{i}.git", "main") for i in range(5)]
    builds = [(a, _pushing(build_store, a, n)) for n in range(1, 5) for a in apps]
    random.Random(11).shuffle(builds)
    done = threading.Event()
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def consume(k: int, restart_at: int | None = None) -> None:
        after = 0
        with _api(api_url) as api:
            while True:
                page = api.get("/desired-state", params={"after": after, "wait": 5 if not done.is_set() else 0})
                assert page.status_code == 200, page.text
                body = page.json()
                for change in body["changes"]:
                    seen[k].append(change["revision"])
                after = body["revision"]
                if restart_at is not None and after >= restart_at:
                    return  # a consumer that stops here and starts again from `after`
                if done.is_set() and not body["changes"]:
                    return

    def build(item) -> bool:
        succeed_at = item[1]
        return build_store.succeed(
            succeed_at.id,
            f"{REGISTRY}/apps/acme/{item[0].name}:{succeed_at.id}",
            f"sha256:{succeed_at.id:064x}",
            "image pushed",
            "run:test",
            run_id=None,
        ).moved

    with ThreadPoolExecutor(max_workers=12) as pool:
        consumers = [pool.submit(consume, k) for k in range(3)]
        try:
            moves = _produce(pool, build, builds, apps, api_url, build_store)
        finally:
            done.set()
        for c in consumers:
            c.result(timeout=120)
    total = build_store.latest_revision()
    assert moves >= 10 and total == moves + 3 * 2
    for k in range(3):
        assert seen[k] == list(range(1, total + 1)), k
    # a consumer restarting from its last revision misses nothing
    restarted: list[int] = []
    with _api(api_url) as api:
        first = api.get("/desired-state", params={"after": 0, "limit": 7}).json()
        restarted += [c["revision"] for c in first["changes"]]
        rest = api.get("/desired-state", params={"after": first["revision"]}).json()
        restarted += [c["revision"] for c in rest["changes"]]
        assert restarted == list(range(1, total + 1))
        current = api.get("/desired-state").json()
        assert current["revision"] == total and len(current["apps"]) == 5
        assert all(a["image"].split("@")[1].startswith("sha256:") for a in current["apps"])


def _produce(pool, build, builds, apps, api_url: str, store: BuildStore) -> int:
    """Succeed the builds concurrently; pin, try a refused rollback and unpin three apps; build again; roll one back."""
    moves = sum(pool.map(build, builds))
    with _api(api_url) as api:
        for a in apps[:3]:
            oldest = min(b.id for x, b in builds if x.id == a.id)
            assert api.post(f"/apps/acme/{a.name}/pin", json={"by": "grace", "note": "freeze"}).status_code == 200
            refused = api.post(f"/apps/acme/{a.name}/rollback", json={"build_id": oldest})
            assert refused.status_code == 409 and "no longer in the registry" in refused.json()["detail"]
            assert api.post(f"/apps/acme/{a.name}/unpin").status_code == 200
    extra = [pool.submit(build, (a, _pushing(store, a, 9))) for a in apps[:3] + apps[4:]]
    moves += sum(f.result() for f in extra)
    kept, repository = apps[3], f"apps/acme/{apps[3].name}-{uuid.uuid4().hex[:8]}"
    real = []
    for n in (8, 9):  # images really in the registry, so a rollback to the first is allowed
        real.append(_pushing(store, kept, n))
        digest = push_manifest(repository, f"{n:040x}")
        ref = f"{REGISTRY}/{repository}:{n:040x}"
        moves += store.succeed(real[-1].id, ref, digest, "pushed", "run:test", run_id=None).moved
    previous = real[0]
    with _api(api_url) as api:
        back = api.post(f"/apps/acme/{kept.name}/rollback", json={"build_id": previous.id, "note": "bad release"})
        assert back.status_code == 200, back.text
        assert (back.json()["reason"], back.json()["note"], back.json()["actor"]) == ("rollback", "bad release", "api")
    return moves + 1


def test_the_feed_validates_its_parameters_and_waits_at_most_wait(api_url: str, build_store: BuildStore):
    with _api(api_url) as api:
        assert api.get("/desired-state", params={"after": -1}).status_code == 422
        assert api.get("/desired-state", params={"after": 0, "wait": 61}).status_code == 422
        assert api.get("/desired-state", params={"after": "x"}).status_code == 422
        assert api.get("/desired-state", params={"after": 5}).status_code == 409
        started = time.monotonic()
        empty = api.get("/desired-state", params={"after": 0, "wait": 0.5}).json()
        assert empty == {"after": 0, "revision": 0, "changes": []} and time.monotonic() - started >= 0.5


@pytest.mark.integration
def test_rollback_checks_the_registry_and_retention_deletes_exactly_the_expected_manifests(
    api_url: str, build_store: BuildStore
):
    name = f"gc{uuid.uuid4().hex[:10]}"
    repository = f"apps/acme/{name}"
    app = build_store.add_app("acme", name, f"https://github.com/acme/{name}.git", "main")
    builds = []
    for n in range(1, 6):
        build = _pushing(build_store, app, n)
        digest = push_manifest(repository, f"{n:040x}")
        build_store.succeed(build.id, f"{REGISTRY}/{repository}:{n:040x}", digest, "pushed", "run:test", run_id=None)
        builds.append(build_store.get_build(build.id))
    with _api(api_url) as api:
        back = api.post(f"/apps/acme/{name}/rollback", json={"build_id": builds[1].id, "by": "grace"})
        assert back.status_code == 200, back.text
        assert back.json()["reason"] == "rollback" and back.json()["actor"] == "api:grace"
        # keep 2 newest (4, 5) and build 2 (desired now); 1 and 3 go
        report = collect_images(build_store, RetentionPolicy(keep_builds=2, keep_days=0))
        assert sorted(d.build_ids for d in report.deleted) == [(builds[0].id,), (builds[2].id,)]
        assert [manifest_exists(repository, b.image_digest) for b in builds] == [False, True, False, True, True]
        refused = api.post(f"/apps/acme/{name}/rollback", json={"build_id": builds[0].id})
        assert refused.status_code == 409
        assert "deleted by image retention" in refused.json()["detail"]
        status = api.get(f"/builds/{builds[0].id}").json()
        assert status["image_deleted_at"] is not None
        assert api.get(f"/apps/acme/{name}/desired-state").json()["build_id"] == builds[1].id
    assert collect_images(build_store, RetentionPolicy(keep_builds=2, keep_days=0)).deleted == []


def test_a_change_made_through_one_api_instance_wakes_a_long_poll_on_another(
    api_url: str, settings: Settings, build_store: BuildStore
):
    app = build_store.add_app("acme", "pinme", "https://github.com/acme/pinme.git", "main")
    build = _pushing(build_store, app, 1)
    build_store.succeed(
        build.id, f"{REGISTRY}/apps/acme/pinme:1", f"sha256:{build.id:064x}", "ok", "run:test", run_id=None
    )
    with ThreadPoolExecutor(max_workers=1) as pool, _serve(settings) as other:
        waiting = pool.submit(lambda: _api(api_url).get("/desired-state", params={"after": 1, "wait": 30}))
        time.sleep(0.3)  # most likely waiting by now; were it not, it would answer at once and still pass
        with _api(other) as api:
            assert api.post("/apps/acme/pinme/pin", json={"by": "grace"}).status_code == 200
        woke = time.monotonic()
        page = waiting.result(timeout=30).json()
        assert time.monotonic() - woke < 5  # woken by the change, long before its 30 s wait ran out
    assert [(c["revision"], c["reason"], c["actor"]) for c in page["changes"]] == [(2, "pin", "api:grace")]
