"""`starforge rollback`, `pin`, `unpin`, `desired-state`, `gc`: operate desired state and images."""

from __future__ import annotations

import sys

import click

from ..settings import get_settings
from .common import actor, app_of, echo_change, open_build_store


@click.command()
@click.argument("app")
@click.argument("build_id", type=int)
@click.option("--note", default=None, help="Why, for the record.")
def rollback(app: str, build_id: int, note: str | None) -> None:
    """Point APP's desired state at an earlier succeeded BUILD_ID (its image checked in the registry first)."""
    from ..builders.wiring import registry_auth
    from ..deploy.operations import rollback as rollback_to
    from ..deploy.registry import RegistryUnavailable
    from ..store import ChangeRefused

    settings = get_settings()
    store = open_build_store()
    target = app_of(store, app)
    auth = registry_auth(settings)
    try:
        echo_change(rollback_to(store, target, build_id, actor(), auth, note=note))
    except (ChangeRefused, RegistryUnavailable) as exc:
        raise click.ClickException(f"rollback refused: {exc}") from None


@click.command()
@click.argument("app")
@click.option("--note", default=None, help="Why, for the record.")
def pin(app: str, note: str | None) -> None:
    """Hold APP on its current image; successful builds wait until unpin."""
    from ..store import ChangeRefused

    store = open_build_store()
    try:
        echo_change(store.pin(app_of(store, app).id, actor(), note))
    except ChangeRefused as exc:
        raise click.ClickException(f"pin refused: {exc}") from None


@click.command()
@click.argument("app")
@click.option("--note", default=None, help="Why, for the record.")
def unpin(app: str, note: str | None) -> None:
    """Release APP's pin; it moves to the newest build held meanwhile."""
    from ..store import ChangeRefused

    store = open_build_store()
    try:
        echo_change(store.unpin(app_of(store, app).id, actor(), note))
    except ChangeRefused as exc:
        raise click.ClickException(f"unpin refused: {exc}") from None


@click.command("desired-state")
@click.option("--watch", is_flag=True, help="Then print every change as it happens, until Ctrl-C.")
@click.option("--after", type=int, default=None, help="With --watch: start after this revision.")
def desired_state_command(watch: bool, after: int | None) -> None:
    """Print every app's desired state (and with --watch, the change feed)."""
    store = open_build_store()
    states, revision = store.all_desired()
    if after is None:
        click.echo(f"revision {revision}")
        for d in states:
            extra = ("\tpinned" if d.pinned else "") + (f"\theld build {d.held_build_id}" if d.held_build_id else "")
            click.echo(f"{d.workspace}/{d.app}\t{d.pinned_image}\tbuild {d.build_id}\t{d.reason or ''}{extra}")
    position = revision if after is None else after
    while watch:
        changes = store.changes_after(position)
        for change in changes:
            echo_change(change)
            position = change.revision
        if not changes:
            import time

            time.sleep(0.2)


@click.command()
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
def gc(dry_run: bool) -> None:
    """Delete pushed images beyond STARFORGE_RETAIN_BUILDS per app, never one desired in STARFORGE_RETAIN_DESIRED_DAYS."""
    from ..builders.wiring import registry_auth
    from ..core.retention import RetentionPolicy
    from ..deploy.operations import collect_images

    settings = get_settings()
    auth = registry_auth(settings)
    report = collect_images(
        open_build_store(),
        RetentionPolicy(settings.retain_builds, settings.retain_desired_days),
        dry_run=dry_run,
        auth=auth,
        on_event=click.echo,
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {len(report.deleted)} images ({report.deleted_builds} builds); "
        f"{len(report.already_gone)} already gone; {len(report.failed)} failed"
    )
    if report.failed:
        sys.exit(1)
