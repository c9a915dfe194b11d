"""No missed pushes: failed deliveries are redelivered, and the reconciler builds heads whose webhook never came."""

from __future__ import annotations

import itertools
from collections import Counter

from starforge_dag.github.sync import reconcile_heads, redeliver_failed


def _builds_per_commit(world) -> Counter:
    return Counter((b.app_id, b.commit_sha) for b in world.store.list_builds(limit=10_000))


def test_delivery_storm_every_pushed_head_gets_exactly_one_build_within_one_reconcile_pass(github_world):
    world = github_world
    world.emulator.drop_fraction = 0.2  # the seeded draw drops the last push of several repositories
    world.emulator.drop_redeliveries = True  # and a redelivery may be lost too: the reconciler is the safety net
    linked = [world.linked_app(f"svc{n}")[0] for n in range(20)]
    pushed: dict[int, list[str]] = {item.app.id: [] for item in linked}
    for round_ in range(10):
        for item in linked:
            pushed[item.app.id].append(world.push(item, {"round": f"{item.app.name} {round_}"}, f"round {round_}"))
    pushes = [d for d in world.emulator.deliveries if d.event == "push"]
    dropped = [d for d in pushes if d.status_code == 0]
    assert len(pushes) == 200 and 20 <= len(dropped) <= 60  # ~20% never reached the API
    before = _builds_per_commit(world)
    heads_missed = [item for item in linked if (item.app.id, world.head(item)) not in before]

    # One reconcile interval: what the reconcile sensor does in one tick.
    redelivered = redeliver_failed(world.gh, world.app())
    report = reconcile_heads(world.store, world.gh, world.app())
    assert not redelivered.errors and not report.errors

    per_commit = _builds_per_commit(world)
    assert max(per_commit.values()) == 1  # no commit built twice
    for item in linked:
        assert per_commit[(item.app.id, world.head(item))] == 1, f"{item.app.name}: head not built exactly once"
    delivered = {d.guid for d in pushes if d.status_code == 202}
    assert len(delivered) == 200 - len(dropped)
    assert heads_missed and len(redelivered.redelivered) + len(report.queued) >= len(heads_missed)
    print(
        f"\n200 pushes, {len(dropped)} dropped, {len(heads_missed)} heads missed by webhooks; "
        f"redelivered {len(redelivered.redelivered)}, reconciler queued {len(report.queued)}; "
        f"builds {sum(per_commit.values())}"
    )

    # A second pass adds nothing: both paths are idempotent.
    assert redeliver_failed(world.gh, world.app()).redelivered == []
    assert reconcile_heads(world.store, world.gh, world.app()).queued == []
    assert _builds_per_commit(world) == per_commit


def test_reconciler_first_then_the_late_webhook_adds_nothing(github_world):
    world = github_world
    linked, _ = world.linked_app("late")
    world.emulator.drop_fraction = 1.0
    sha = world.push(linked, {"x": "1"})
    assert world.store.list_builds(app_id=linked.app.id) == []
    report = reconcile_heads(world.store, world.gh, world.app())
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert report.queued == [build.id] and build.trigger == "reconcile" and build.commit_sha == sha
    world.store.finish(build.id, "canceled", "done for the test", "test")
    world.emulator.drop_fraction = 0.0
    (delivery,) = [d for d in world.emulator.deliveries if d.event == "push"]
    world.app().redeliver(delivery.id)
    assert world.emulator.deliveries[-1].status_code == 200  # answered: already queued by the reconciler
    assert [b.id for b in world.store.list_builds(app_id=linked.app.id)] == [build.id]


def test_ignored_commits_are_not_built_by_the_reconciler(github_world):
    world = github_world
    linked, _ = world.linked_app("docs")
    world.push(linked, {"README": "typo"}, "fix typo [skip ci]")
    assert world.store.list_builds(app_id=linked.app.id) == []
    assert reconcile_heads(world.store, world.gh, world.app()).queued == []


def test_a_paused_app_is_not_reconciled(github_world):
    world = github_world
    linked, _ = world.linked_app("gone")
    world.emulator.uninstall(linked.installation_id)
    report = reconcile_heads(world.store, world.gh, world.app())
    assert report.queued == [] and report.checked == 0


def test_reconcile_passes_cut_short_by_the_deadline_take_turns_over_the_apps(github_world):
    world = github_world
    world.emulator.drop_fraction = 1.0
    linked = [world.linked_app(name)[0] for name in ("a", "b", "c")]
    for item in linked:
        world.push(item, {"x": "1"})
    first, second, third = (item.app.id for item in linked)

    report = reconcile_heads(
        world.store, world.gh, world.app(), after_app_id=second, deadline=2, clock=itertools.count().__next__
    )
    assert (report.checked, report.left, report.last_app_id) == (2, 1, first)
    assert "left 1 for the next pass" in str(report)
    assert {world.store.get_build(b).app_id for b in report.queued} == {third, first}

    rest = reconcile_heads(world.store, world.gh, world.app(), after_app_id=report.last_app_id)
    assert (rest.checked, rest.left, rest.last_app_id) == (3, 0, first)
    assert [world.store.get_build(b).app_id for b in rest.queued] == [second]


def test_no_redelivery_is_asked_for_past_the_deadline(github_world):
    world = github_world
    linked, _ = world.linked_app("late")
    world.emulator.drop_fraction = 1.0
    world.push(linked, {"x": "1"})

    report = redeliver_failed(world.gh, world.app(), deadline=0, clock=lambda: 0.0)

    assert (report.redelivered, report.left) == ([], 1) and "left 1 for the next pass" in str(report)
    assert redeliver_failed(world.gh, world.app()).redelivered != []
