"""`starforge apps update|remove|show`, `starforge vars …` and `starforge secrets rotate-key`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .settings import get_settings


def _store():
    from .store import open_store

    return open_store(get_settings().resolved_database_url)


def _app(store, name: str):
    from .core.inputs import InvalidInput, check_text
    from .store import NotFound

    try:
        return store.get_app(check_text(name, "app name", max_chars=201))
    except (NotFound, InvalidInput) as exc:
        raise click.ClickException(str(exc)) from None


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _echo_app(app, **extra: Any) -> None:
    click.echo(json.dumps({**app.model_dump(mode="json"), **extra}))


@click.command("update")
@click.argument("app")
@click.option("--repo", default=None, help="New clone URL (STARFORGE_GIT_ALLOWED_SCHEMES/_HOSTS apply).")
@click.option("--branch", default=None, help="Branch whose pushes are built.")
@click.option("--root-dir", default=None, help="The app's directory inside the repository.")
@click.option("--dockerfile", default=None, help="Dockerfile path relative to the root dir ('' clears it).")
@click.option("--watch", multiple=True, help="Only pushes touching these globs build (repeatable; replaces all).")
@click.option("--no-watch", is_flag=True, help="Clear the watch paths.")
@click.option("--target", default=None, help="Dockerfile stage to build ('' clears it).")
@click.option("--build-timeout", type=int, default=None, help="Seconds; 0 falls back to STARFORGE_BUILD_TIMEOUT_S.")
@click.option("--cancel-running/--no-cancel-running", default=None, help="A new push stops the running build.")
@click.option("--auto-build/--no-auto-build", default=None, help="Off: pushes are recorded, not built.")
def apps_update(
    app, repo, branch, root_dir, dockerfile, watch, no_watch, target, build_timeout, cancel_running, auto_build
) -> None:
    """Change APP's settings (only the options given)."""
    from .core.app_settings import check_setting
    from .core.inputs import InvalidInput
    from .store import AppArchived

    given: dict[str, Any] = {
        "repo_url": repo,
        "branch": branch,
        "root_dir": root_dir,
        "dockerfile_path": dockerfile,
        "target": target,
        "build_timeout_s": build_timeout,
        "cancel_running": cancel_running,
        "auto_build": auto_build,
    }
    if watch or no_watch:
        given["watch_paths"] = [] if no_watch else list(watch)
    changes: dict[str, Any] = {}
    policy = get_settings().git_policy
    try:
        for field, value in given.items():
            if value is None:
                continue
            if (field in ("dockerfile_path", "target") and value == "") or (field == "build_timeout_s" and value == 0):
                changes[field] = None
            else:
                changes[field] = check_setting(field, value, policy)
    except InvalidInput as exc:
        raise click.ClickException(f"{field}: {exc}") from None
    store = _store()
    found = _app(store, app)
    try:
        _echo_app(store.update_app(found.id, changes))
    except AppArchived as exc:
        raise click.ClickException(str(exc)) from None


@click.command("remove")
@click.argument("app")
def apps_remove(app: str) -> None:
    """Remove APP: its queued and running builds stop; builds, logs and desired state are kept."""
    store = _store()
    removed, stopped = store.remove_app(_app(store, app).id, _actor())
    _echo_app(removed, stopped=[b.id for b in stopped])


@click.command("show")
@click.argument("app")
def apps_show(app: str) -> None:
    """Print APP's settings and its variables (never a secret's value)."""
    store = _store()
    found = _app(store, app)
    variables = [_listed(v) for v in store.variables(found.workspace, found.name)]
    _echo_app(found, variables=variables)


def _listed(v) -> dict[str, Any]:
    return {
        "name": v.name,
        "scope": v.scope,
        "secret": v.secret,
        "value": None if v.secret else v.value,
        "fingerprint": v.fingerprint,
        "version": v.version,
        "actor": v.actor,
        "created_at": v.created_at.isoformat(),
    }


@click.group("vars")
def vars_group() -> None:
    """Build-time variables and secrets of apps and workspaces."""


@vars_group.command("list")
@click.argument("app", required=False)
@click.option("--workspace", default=None, help="List the workspace's variables instead of an app's.")
def vars_list(app: str | None, workspace: str | None) -> None:
    """List APP's variables (or the workspace's): secrets show their fingerprint, never their value."""
    from .store import NotFound

    if (app is None) == (workspace is None):
        raise click.ClickException("give APP or --workspace WS")
    store = _store()
    try:
        if app is not None:
            found = _app(store, app)
            listed = store.variables(found.workspace, found.name)
        else:
            listed = store.variables(workspace or "")
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    for v in listed:
        shown = "(secret)" if v.secret else v.value
        click.echo(
            f"{v.name}\t{shown}\tv{v.version}\t{(v.fingerprint or '')[:16]}\t{v.actor}\t{v.created_at:%Y-%m-%dT%H:%M:%SZ}"
        )


def _assignments(words: tuple[str, ...], secret: bool) -> list:
    """NAME=VALUE words; a NAME alone takes its value from standard input, so it stays out of shell history."""
    from .store import NewValue

    values = []
    from_stdin = [w for w in words if "=" not in w]
    if len(from_stdin) > 1:
        raise click.ClickException("only one NAME may take its value from standard input")
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            value = sys.stdin.read()
            value = value[:-1] if value.endswith("\n") else value
        values.append(NewValue(name, value, secret))
    return values


@vars_group.command("set")
@click.argument("words", nargs=-1, required=True, metavar="APP NAME=VALUE…")
@click.option("--secret", is_flag=True, help="Seal the values: masked in logs, never shown again.")
@click.option("--workspace", default=None, help="Set the workspace's variables (then every word is NAME=VALUE).")
def vars_set(words: tuple[str, ...], secret: bool, workspace: str | None) -> None:
    """Set variables of APP (all or none); `NAME` alone reads the value from standard input."""
    from .store import AppArchived, NotFound
    from .variables.crypto import SecretsKeyError
    from .variables.rules import InvalidVariable, TooManyVariables

    store = _store()
    if workspace is None:
        if len(words) < 2:
            raise click.ClickException("give APP and at least one NAME=VALUE")
        found = _app(store, words[0])
        scope, app_name, words = found.workspace, found.name, words[1:]
    else:
        scope, app_name = workspace, None
    try:
        written = store.set_variables(
            scope, app_name, _assignments(words, secret), _actor(), get_settings().secret_box()
        )
    except (InvalidVariable, TooManyVariables, AppArchived, NotFound, SecretsKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    for v in written:
        click.echo(f"{v.name}\tv{v.version}\t{'secret' if v.secret else 'plain'}\t{(v.fingerprint or '')[:16]}")


@vars_group.command("unset")
@click.argument("words", nargs=-1, required=True, metavar="APP NAME")
@click.option("--workspace", default=None, help="Unset the workspace's variable NAME instead of an app's.")
def vars_unset(words: tuple[str, ...], workspace: str | None) -> None:
    """Remove APP's variable NAME (recorded as its newest version)."""
    from .store import AppArchived, NotFound

    if len(words) != (1 if workspace is not None else 2):
        raise click.ClickException("give APP NAME, or --workspace WS NAME")
    store = _store()
    try:
        if workspace is None:
            found = _app(store, words[0])
            v = store.unset_variable(found.workspace, found.name, words[1], _actor())
        else:
            v = store.unset_variable(workspace, None, words[0], _actor())
    except (AppArchived, NotFound) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{v.name}\tv{v.version}\tremoved")


@click.group("secrets")
def secrets_group() -> None:
    """The key that seals secret variables."""


@secrets_group.command("rotate-key")
def secrets_rotate_key() -> None:
    """Re-encrypt every secret under the newest key while the older ones keep opening the rest.

    With STARFORGE_SECRETS_KEY set, list the new key first (`new,old`), run this, then drop the old key.
    With the embedded key file, a new key is put first in it; older keys stay listed there, opening nothing.
    """
    from .variables.crypto import KEY_FILE, SecretBox, SecretsKeyError, key_file_keys, new_key

    settings = get_settings()
    try:
        if settings.secrets_key.get_secret_value():
            box = settings.secret_box()
            where = "STARFORGE_SECRETS_KEY's first key"
        else:
            keys = key_file_keys(settings.resolved_home)
            path = settings.resolved_home / KEY_FILE
            keys = [new_key(), *keys]
            staging = path.with_name(f".{KEY_FILE}.rotating")
            staging.touch(mode=0o600)
            staging.chmod(0o600)
            staging.write_text("\n".join(keys) + "\n")
            staging.replace(path)
            box = SecretBox(keys)
            where = f"a new key in {path}"
        count = _store().rotate_secrets(box)
    except SecretsKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted {count} sealed values under {where}")
