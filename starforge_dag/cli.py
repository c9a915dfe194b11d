"""The `starforge` command: API server, apps, builds, logs, status, planning and the demo."""

from __future__ import annotations

import json
import sys

import click

from .settings import get_settings


def _store():
    from .store import open_store

    return open_store(get_settings().resolved_database_url)


@click.group()
def main() -> None:
    """Starforge: git push → pushed, verified image → desired state."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the HTTP API (webhook receiver, builds, logs, desired state)."""
    from .api import serve

    serve(host, port)


@main.group()
def apps() -> None:
    """Register and list apps."""


@apps.command("add")
@click.argument("name")
@click.option("--repo", required=True, help="Clone URL (https://, ssh://, git@host:owner/repo or file://).")
@click.option("--branch", default="main", show_default=True, help="Branch whose pushes are built.")
@click.option("--workspace", default="default", show_default=True)
@click.option("--root-dir", default="", help="The app's directory inside the repository.")
@click.option("--dockerfile", default=None, help="Dockerfile path relative to the root dir.")
@click.option("--watch", multiple=True, help="Only pushes touching these globs build (repeatable).")
@click.option("--repo-name", default=None, help="GitHub owner/repo, when the URL does not show it.")
@click.option("--cancel-running/--no-cancel-running", default=False, help="A new push stops the running build.")
def apps_add(name, repo, branch, workspace, root_dir, dockerfile, watch, repo_name, cancel_running) -> None:
    """Register an app so pushes to its repository build it."""
    try:
        app = _store().add_app(
            workspace,
            name,
            repo,
            branch,
            repo_full_name=repo_name,
            root_dir=root_dir,
            dockerfile_path=dockerfile,
            watch_paths=list(watch),
            cancel_running=cancel_running,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(app.model_dump(mode="json")))


@apps.command("list")
def apps_list() -> None:
    """List registered apps."""
    for app in _store().list_apps():
        click.echo(f"{app.workspace}/{app.name}\t{app.repo_url}\t{app.branch}")


@main.command()
@click.argument("app")
@click.option("--ref", default=None, help="Branch or 40-hex commit sha (default: the app's branch).")
def build(app: str, ref: str | None) -> None:
    """Queue a build of APP (workspace/app or app)."""
    from .api.refs import RefError, RefNotFound, resolve_ref
    from .core.models import Trigger
    from .store import NotFound

    store = _store()
    try:
        found = store.get_app(app)
        name, sha = resolve_ref(found.repo_url, ref or found.branch)
    except (NotFound, RefNotFound, RefError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    outcome = store.enqueue(found, name, sha, trigger=Trigger.MANUAL, actor="cli")
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


@main.command()
@click.argument("build_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the build ends.")
def logs(build_id: int, follow: bool) -> None:
    """Print a build's log."""
    from .logs import follow_log, open_log_store
    from .store import NotFound

    settings = get_settings()
    store = _store()
    try:
        store.get_build(build_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    ended = (lambda: store.get_build(build_id).status.terminal) if follow else None
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as log_store:
        for line in follow_log(log_store, build_id, ended=ended):
            click.echo(line.text)


@main.command()
@click.argument("build_id", type=int, required=False)
def status(build_id: int | None) -> None:
    """Show one build (with its phases) or the latest builds."""
    from .store import NotFound

    store = _store()
    if build_id is None:
        for b in store.list_builds(limit=20):
            click.echo(f"{b.id}\t{b.status.value}\t{b.workspace}/{b.app}\t{b.commit_sha[:12]}\t{b.error or ''}")
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
    click.echo(json.dumps(out, indent=2))


@main.command("build-dir")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--image", required=True, help="Image reference to push, e.g. 127.0.0.1:5000/apps/demo:dev")
def build_dir(path: str, image: str) -> None:
    """Build a directory with the configured BuildService; print one JSON object."""
    from .buildkit.build_dir import build_dir_command

    sys.exit(build_dir_command(path, image))


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--info", is_flag=True, help="Print what was detected instead of the plan.")
def plan(directory: str, info: bool) -> None:
    """Print the Railpack build plan of DIRECTORY as JSON."""
    from .railpack.cli import plan_command

    sys.exit(plan_command(directory, info))


@main.command()
@click.option(
    "--backend",
    type=click.Choice(["auto", "buildkit", "fake"]),
    default=None,
    help="Build backend (default: STARFORGE_BUILD_BACKEND, else buildkit when dockerd is reachable).",
)
def demo(backend: str | None) -> None:
    """Carry a sample app from a signed push webhook to desired state, on embedded defaults."""
    from .demo import run_demo

    settings = get_settings()
    sys.exit(run_demo(settings.model_copy(update={"build_backend": backend}) if backend else settings))


@main.command()
@click.option("--api-port", default=8000, show_default=True, type=int)
@click.option("--ui-port", default=3000, show_default=True, type=int)
def up(api_port: int, ui_port: int) -> None:
    """Run the API, dagster-daemon and dagster-webserver together until Ctrl-C (Dagster storage in Postgres)."""
    from .stack import StackError, run_stack_forever

    try:
        run_stack_forever(api_port=api_port, webserver_port=ui_port)
    except StackError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--postgres", is_flag=True, help="Use deploy/dagster-postgres.yaml (STARFORGE_DAGSTER_PG_URL).")
def dagster_home(postgres: bool) -> None:
    """Prepare DAGSTER_HOME under STARFORGE_HOME and print it (export it before dagster commands)."""
    from .instance import prepare_dagster_home

    click.echo(prepare_dagster_home(get_settings(), postgres=postgres))


if __name__ == "__main__":
    main()
