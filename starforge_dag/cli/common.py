"""Helpers the command groups share: the build store, an app by name, the actor, a desired-state line, a variable."""

from __future__ import annotations

from typing import Any

import click

from ..settings import get_settings


def open_build_store():
    from ..store import open_store

    return open_store(get_settings().resolved_database_url)


def app_of(store, name: str):
    from ..core.inputs import InvalidInput, check_text
    from ..store import NotFound

    try:
        return store.get_app(check_text(name, "app name", max_chars=201))
    except (NotFound, InvalidInput) as exc:
        raise click.ClickException(str(exc)) from None


def actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def echo_change(change) -> None:
    """One feed entry per line; a preview's names its environment after the app, a teardown has no image."""
    where = "" if change.environment == "production" else f" ({change.environment})"
    click.echo(
        f"{change.revision}\t{change.workspace}/{change.app}{where}\t{change.reason}\t{change.pinned_image or '-'}"
        f"\tbuild {change.build_id or '-'}\t{change.actor}\t{change.note}"
    )


def variable_view(v) -> dict[str, Any]:
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
