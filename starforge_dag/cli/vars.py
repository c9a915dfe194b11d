"""`starforge vars …`, `starforge secrets rotate-key`: an app's and a workspace's variables and secrets."""

from __future__ import annotations

import sys

import click

from ..settings import get_settings
from .common import actor, app_of, open_build_store


@click.group("vars")
def vars_group() -> None:
    """Build-time variables and secrets of apps and workspaces."""


@vars_group.command("list")
@click.argument("app", required=False)
@click.option("--workspace", default=None, help="List the workspace's variables instead of an app's.")
def vars_list(app: str | None, workspace: str | None) -> None:
    """List APP's variables (or the workspace's): secrets show their fingerprint, never their value."""
    from ..store import NotFound

    if (app is None) == (workspace is None):
        raise click.ClickException("give APP or --workspace WS")
    store = open_build_store()
    try:
        if app is not None:
            found = app_of(store, app)
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


def _assignments(words: tuple[str, ...], secret: bool, for_previews: bool = False) -> list:
    """NAME=VALUE words; a NAME alone takes its value from standard input, so it stays out of shell history."""
    from ..store import NewValue

    values = []
    from_stdin = [w for w in words if "=" not in w]
    if len(from_stdin) > 1:
        raise click.ClickException("only one NAME may take its value from standard input")
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            value = sys.stdin.read()
            value = value[:-1] if value.endswith("\n") else value
        values.append(NewValue(name, value, secret, for_previews))
    return values


@vars_group.command("set")
@click.argument("words", nargs=-1, required=True, metavar="APP NAME=VALUE…")
@click.option("--secret", is_flag=True, help="Seal the values: masked in logs, never shown again.")
@click.option("--workspace", default=None, help="Set the workspace's variables (then every word is NAME=VALUE).")
@click.option("--for-previews", is_flag=True, help="With --secret: pull-request previews get it too (never a fork's).")
def vars_set(words: tuple[str, ...], secret: bool, workspace: str | None, for_previews: bool) -> None:
    """Set variables of APP (all or none); `NAME` alone reads the value from standard input."""
    from ..store import AppArchived, NotFound
    from ..variables.crypto import SecretsKeyError
    from ..variables.rules import InvalidVariable, TooManyVariables

    if for_previews and not secret:
        raise click.ClickException("--for-previews marks secrets: plain variables reach previews anyway")
    store = open_build_store()
    if workspace is None:
        if len(words) < 2:
            raise click.ClickException("give APP and at least one NAME=VALUE")
        found = app_of(store, words[0])
        scope, app_name, words = found.workspace, found.name, words[1:]
    else:
        scope, app_name = workspace, None
    try:
        written = store.set_variables(
            scope, app_name, _assignments(words, secret, for_previews), actor(), get_settings().secret_box()
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
    from ..store import AppArchived, NotFound

    if len(words) != (1 if workspace is not None else 2):
        raise click.ClickException("give APP NAME, or --workspace WS NAME")
    store = open_build_store()
    try:
        if workspace is None:
            found = app_of(store, words[0])
            v = store.unset_variable(found.workspace, found.name, words[1], actor())
        else:
            v = store.unset_variable(workspace, None, words[0], actor())
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
    from ..variables.crypto import KEY_FILE, SecretBox, SecretsKeyError, key_file_keys, new_key

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
        count = open_build_store().rotate_secrets(box)
    except SecretsKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted {count} sealed values under {where}")
