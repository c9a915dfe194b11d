"""Variables in the build store, on SQLite and Postgres: versions, scopes, what builds get, rules, rotation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from starforge_dag.core.models import App
from starforge_dag.store import AppArchived, BuildStore, NewValue, NotFound
from starforge_dag.store import schema as t
from starforge_dag.variables.crypto import SecretBox, SecretsKeyError, new_key
from starforge_dag.variables.rules import MAX_PER_SCOPE, InvalidVariable, TooManyVariables

SECRET = "npm_tok-9f8e7d6c5b4a"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


@pytest.fixture
def web(build_store: BuildStore) -> App:
    return build_store.add_app("acme", "web", "https://github.com/acme/web.git")


def resolved(store: BuildStore, build_id: int, box: SecretBox) -> dict[str, str]:
    return {v.name: v.value.get_secret_value() for v in store.build_variables(build_id, box)}


def dump(store: BuildStore) -> str:
    """Every row of every table, as text: what a database dump would hold."""
    with store.engine.connect() as conn:
        return "\n".join(
            repr(row) for table in t.metadata.sorted_tables for row in conn.execute(sa.select(table)).all()
        )


def test_every_change_is_a_new_version_with_actor_and_listing_shows_the_newest(build_store, web, box) -> None:
    build_store.set_variables("acme", "web", [NewValue("GREETING", "hello")], "ada", box)
    build_store.set_variables("acme", "web", [NewValue("GREETING", "hi")], "bob", box)
    (listed,) = build_store.variables("acme", "web")
    assert (listed.value, listed.version, listed.actor, listed.scope) == ("hi", 2, "bob", "app")
    history = build_store.variable_history("acme", "web")
    assert [(v.version, v.actor, v.value) for v in history] == [(1, "ada", "hello"), (2, "bob", "hi")]
    build_store.unset_variable("acme", "web", "GREETING", "cy")
    assert build_store.variables("acme", "web") == []
    assert [v.deleted for v in build_store.variable_history("acme", "web")] == [False, False, True]
    with pytest.raises(NotFound):
        build_store.unset_variable("acme", "web", "GREETING", "cy")


def test_a_secret_is_never_listed_and_its_fingerprint_shows_a_change(build_store, web, box) -> None:
    (first,) = build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", SECRET, secret=True)], "ada", box)
    (same,) = build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", SECRET, secret=True)], "ada", box)
    (changed,) = build_store.set_variables(
        "acme", "web", [NewValue("NPM_TOKEN", SECRET + "x", secret=True)], "ada", box
    )
    assert first.value is None and first.secret
    assert first.fingerprint == same.fingerprint != changed.fingerprint
    assert SECRET not in repr(build_store.variables("acme", "web")) + repr(build_store.variable_history("acme", "web"))


def test_a_build_gets_the_app_variable_over_the_workspace_one_and_keeps_its_versions(build_store, web, box) -> None:
    build_store.set_variables("acme", None, [NewValue("REGION", "eu"), NewValue("TIER", "free")], "ada", box)
    build_store.set_variables("acme", "web", [NewValue("TIER", "pro"), NewValue("NPM_TOKEN", SECRET, True)], "ada", box)
    build = build_store.enqueue(web, "main", SHA).build
    assert resolved(build_store, build.id, box) == {"REGION": "eu", "TIER": "pro", "NPM_TOKEN": SECRET}

    build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", "rotated-token", True)], "ada", box)
    build_store.unset_variable("acme", "web", "TIER", "ada")
    assert resolved(build_store, build.id, box) == {"REGION": "eu", "TIER": "pro", "NPM_TOKEN": SECRET}

    build_store.finish(build.id, "failed", "boom", "test")
    again = build_store.enqueue(web, "main", SHA).build
    assert resolved(build_store, again.id, box) == {"REGION": "eu", "TIER": "free", "NPM_TOKEN": "rotated-token"}


def test_a_workspace_variable_never_reaches_another_workspace(build_store, web, box) -> None:
    other = build_store.add_app("globex", "web", "https://github.com/globex/web.git")
    build_store.set_variables("acme", None, [NewValue("API_KEY", SECRET, True)], "ada", box)
    build = build_store.enqueue(other, "main", SHA).build
    assert resolved(build_store, build.id, box) == {}
    assert build_store.variables("globex", "web") == []


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("9LIVES", "x", "does not match"),
        ("BAD-NAME", "x", "does not match"),
        ("", "x", "empty"),
        ("A" * 257, "x", "longer than 256"),
        ("STARFORGE_TOKEN", "x", "STARFORGE_"),
        ("dagster_home", "x", "DAGSTER_"),
        ("OK", "a\x00b", "NUL"),
        ("OK", "x" * (64 * 1024 + 1), "64 KiB"),
        ("OK", "\ud800", "surrogate"),
    ],
)
def test_every_rule_refuses_and_nothing_is_written(build_store, web, box, name, value, rule) -> None:
    with pytest.raises(InvalidVariable, match=rule):
        build_store.set_variables("acme", "web", [NewValue("FIRST_OK", "1"), NewValue(name, value)], "ada", box)
    assert build_store.variable_history("acme", "web") == []


def test_values_up_to_64_kib_are_kept_whole(build_store, web, box) -> None:
    big = "y" * (64 * 1024)
    build_store.set_variables("acme", "web", [NewValue("BIG", big, True), NewValue("A" * 256, "z")], "ada", box)
    build = build_store.enqueue(web, "main", SHA).build
    assert resolved(build_store, build.id, box)["BIG"] == big


def test_at_most_500_variables_per_app_and_the_refused_batch_writes_nothing(build_store, web, box) -> None:
    build_store.set_variables("acme", "web", [NewValue(f"V{i}", "1") for i in range(MAX_PER_SCOPE - 1)], "ada", box)
    with pytest.raises(TooManyVariables, match="at most 500"):
        build_store.set_variables("acme", "web", [NewValue("LAST", "1"), NewValue("ONE_TOO_MANY", "1")], "ada", box)
    assert len(build_store.variables("acme", "web")) == MAX_PER_SCOPE - 1
    build_store.set_variables("acme", "web", [NewValue("LAST", "1"), NewValue("V0", "changed")], "ada", box)
    assert len(build_store.variables("acme", "web")) == MAX_PER_SCOPE


def test_a_dump_holds_only_ciphertext_and_the_scan_finds_a_plain_value(build_store, web, box) -> None:
    build_store.set_variables(
        "acme", "web", [NewValue("NPM_TOKEN", SECRET, True), NewValue("PLAIN", "visible-1")], "ada", box
    )
    build_store.enqueue(web, "main", SHA)
    text = dump(build_store)
    assert SECRET not in text
    assert "visible-1" in text  # the same scan finds a value stored in the clear


def test_rotation_moves_every_secret_to_the_new_key_with_old_keys_opening_meanwhile(build_store, web, box) -> None:
    old_key = new_key()
    old = SecretBox([old_key])
    build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", SECRET, True)], "ada", old)
    build = build_store.enqueue(web, "main", SHA).build
    fingerprint = build_store.variables("acme", "web")[0].fingerprint
    new = new_key()
    during = SecretBox([new, old_key])
    assert resolved(build_store, build.id, during)["NPM_TOKEN"] == SECRET
    assert build_store.rotate_secrets(during) == 2  # the secret and the fingerprint key
    only_new = SecretBox([new])
    assert resolved(build_store, build.id, only_new)["NPM_TOKEN"] == SECRET
    with pytest.raises(SecretsKeyError):
        build_store.build_variables(build.id, old)
    (again,) = build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", SECRET, True)], "ada", only_new)
    assert again.fingerprint == fingerprint  # fingerprints survive a rotation


def test_a_removed_app_keeps_its_history_stops_its_builds_and_refuses_changes(build_store, web, box) -> None:
    queued = build_store.enqueue(web, "main", SHA).build
    running = build_store.enqueue(web, "feature", "1" * 40).build
    build_store.transition(running.id, "cloning", "cloning", "run:test")
    removed, stopped = build_store.remove_app(web.id, "ada")
    assert removed.archived and {b.id for b in stopped} == {queued.id, running.id}
    assert build_store.get_build(queued.id).status == "canceled"
    assert build_store.cancel_state(running.id) == "canceled"
    with pytest.raises(AppArchived):
        build_store.enqueue(web, "main", "2" * 40)
    with pytest.raises(AppArchived):
        build_store.set_variables("acme", "web", [NewValue("X_Y", "1")], "ada", box)
    with pytest.raises(AppArchived):
        build_store.update_app(web.id, {"branch": "dev"})
    assert build_store.get_app("web", "acme").archived_at == removed.archived_at
    assert len(build_store.list_builds(app_id=web.id)) == 2


def test_settings_changes_are_kept_and_an_image_is_not_reused_across_variable_changes(build_store, web, box) -> None:
    changed = build_store.update_app(
        web.id,
        {"target": "runtime", "build_timeout_s": 120, "auto_build": False, "repo_url": "https://github.com/acme/web2"},
    )
    assert (changed.target, changed.build_timeout_s, changed.auto_build) == ("runtime", 120, False)
    assert changed.repo_full_name == "acme/web2"
    assert build_store.get_app_by_id(web.id) == changed
    first = build_store.enqueue(web, "main", SHA).build
    assert build_store.get_build(first.id).build_timeout_s == 120
    build_store.set_variables("acme", "web", [NewValue("GREETING", "hi")], "ada", box)
    with build_store.engine.connect() as conn:
        keys = conn.execute(sa.select(t.builds.c.settings_key).where(t.builds.c.id == first.id)).scalar()
    build_store.finish(first.id, "failed", "boom", "test")
    second = build_store.enqueue(web, "main", SHA).build
    with build_store.engine.connect() as conn:
        other = conn.execute(sa.select(t.builds.c.settings_key).where(t.builds.c.id == second.id)).scalar()
    assert keys != other
