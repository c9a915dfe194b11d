"""`starforge build`, `logs`, `status`: queue builds and watch them."""

from __future__ import annotations

import json

import click

from ..settings import get_settings
from .common import open_build_store


@click.command()
@click.argument("app")
@click.option("--ref", default=None, help="Branch or full commit id (default: the app's branch).")
@click.option("--no-cache", is_flag=True, help="Build without the build cache (e.g. after changing a secret).")
def build(app: str, ref: str | None, no_cache: bool) -> None:
    """Queue a build of APP (workspace/app or app)."""
    from ..core.inputs import check_text
    from ..core.models import Trigger
    from ..git.refs import RefError, RefNotFound, resolve_ref
    from ..store import NotFound

    settings = get_settings()
    store = open_build_store()
    try:
        found = store.get_app(check_text(app, "app name", max_chars=201))
        wanted = check_text(ref, "ref", max_chars=255) if ref is not None else found.branch
        name, sha = resolve_ref(
            found.repo_url, wanted, settings.git_policy, settings.git_timeout_s, settings.git_host_env
        )
    except (NotFound, RefNotFound, RefError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    outcome = store.enqueue(found, name, sha, trigger=Trigger.MANUAL, actor="cli", no_cache=no_cache)
    click.echo(
        json.dumps(
            {
                "build_id": outcome.build.id,
                "created": outcome.created,
                "commit": sha,
                "status": outcome.build.status.value,
            }
        )
    )


@click.command()
@click.argument("build_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the build ends.")
def logs(build_id: int, follow: bool) -> None:
    """Print a build's log."""
    from ..logs import follow_log, open_log_store
    from ..store import NotFound

    settings = get_settings()
    store = open_build_store()
    try:
        store.get_build(build_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    ended = (lambda: store.get_build(build_id).status.terminal) if follow else None
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as log_store:
        for line in follow_log(log_store, build_id, ended=ended):
            click.echo(line.text)


@click.command()
@click.argument("build_id", type=int, required=False)
def status(build_id: int | None) -> None:
    """Show one build (with its phases, why it failed and its page) or the latest builds."""
    from ..core.models import utcnow
    from ..logs import open_log_store
    from ..pages.explain import build_masker, explain_build
    from ..store import NotFound

    settings = get_settings()
    store = open_build_store()
    if build_id is None:
        for b in store.list_builds(limit=20):
            backend = b.backend_url or b.backend_build_id or ""
            click.echo(
                f"{b.id}\t{b.status.value}\t{b.workspace}/{b.app}\t{b.commit_sha[:12]}\t{b.error or ''}\t{backend}"
            )
        return
    try:
        b = store.get_build(build_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    out = b.model_dump(mode="json")
    out["phases"] = [
        {"state": t.to_state.value, "at": t.at.isoformat(), "reason": t.reason, "actor": t.actor}
        for t in store.transitions(build_id)
    ]
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        masker = build_masker(store, build_id, settings.secret_box())
        explanation = explain_build(store, logs, build_id, settings.build_network, masker)
    out["explanation"] = explanation.model_dump(mode="json") if explanation else None
    if settings.public_url:
        out["page_url"] = settings.page_links().url(build_id, utcnow())
    click.echo(json.dumps(out, indent=2))
