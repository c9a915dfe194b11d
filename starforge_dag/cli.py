"""The `starforge` command: API server, apps, builds, logs, status, planning and the demo."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .settings import get_settings

if TYPE_CHECKING:
    from .emulators.depot import DepotEmulator


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
@click.option(
    "--repo",
    default=None,
    help="Clone URL; its scheme and host must be allowed (STARFORGE_GIT_ALLOWED_SCHEMES/_HOSTS).",
)
@click.option(
    "--github-repo",
    default=None,
    help="owner/name of a GitHub repository reached through the GitHub App (private ones too); followed by id.",
)
@click.option("--branch", default="main", show_default=True, help="Branch whose pushes are built.")
@click.option("--workspace", default="default", show_default=True)
@click.option("--root-dir", default="", help="The app's directory inside the repository.")
@click.option("--dockerfile", default=None, help="Dockerfile path relative to the root dir.")
@click.option("--watch", multiple=True, help="Only pushes touching these globs build (repeatable).")
@click.option("--repo-name", default=None, help="GitHub owner/repo, when the URL does not show it.")
@click.option("--cancel-running/--no-cancel-running", default=False, help="A new push stops the running build.")
def apps_add(
    name, repo, github_repo, branch, workspace, root_dir, dockerfile, watch, repo_name, cancel_running
) -> None:
    """Register an app so pushes to its repository build it."""
    from .core.inputs import InvalidInput, check_branch, check_repo_url, check_text

    if (repo is None) == (github_repo is None):
        raise click.ClickException("give exactly one of --repo URL and --github-repo owner/name")
    link = None
    if github_repo is not None:
        from .github_cli import resolve_github_repo

        link = resolve_github_repo(get_settings(), github_repo)
        repo, repo_name = link.clone_url, link.full_name
    try:
        check_repo_url(repo, get_settings().git_policy)
        check_branch(branch)
        for what, value in (("name", name), ("workspace", workspace), ("root dir", root_dir)):
            check_text(value, what, max_chars=100 if what != "root dir" else 1000)
        for what, value in (("dockerfile", dockerfile), ("repo name", repo_name), *(("watch", w) for w in watch)):
            if value is not None:
                check_text(value, what)
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
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
    out = app.model_dump(mode="json")
    if link is not None:
        from .store.github import GitHubStore

        GitHubStore(_store().engine).link_app(app.id, link.repo_id, link.full_name, link.installation_id)
        out.update(github_repo_id=link.repo_id, github_installation_id=link.installation_id)
    click.echo(json.dumps(out))


@apps.command("list")
def apps_list() -> None:
    """List registered apps."""
    for app in _store().list_apps():
        click.echo(f"{app.workspace}/{app.name}\t{app.repo_url}\t{app.branch}")


@main.command()
@click.argument("app")
@click.option("--ref", default=None, help="Branch or full commit id (default: the app's branch).")
def build(app: str, ref: str | None) -> None:
    """Queue a build of APP (workspace/app or app)."""
    from .core.inputs import check_text
    from .core.models import Trigger
    from .git.refs import RefError, RefNotFound, resolve_ref
    from .store import NotFound

    settings = get_settings()
    store = _store()
    try:
        found = store.get_app(check_text(app, "app name", max_chars=201))
        wanted = check_text(ref, "ref", max_chars=255) if ref is not None else found.branch
        name, sha = resolve_ref(found.repo_url, wanted, settings.git_policy, settings.git_timeout_s)
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
    click.echo(json.dumps(out, indent=2))


def _app_of(store, name: str):
    from .core.inputs import InvalidInput, check_text
    from .store import NotFound

    try:
        return store.get_app(check_text(name, "app name", max_chars=201))
    except (NotFound, InvalidInput) as exc:
        raise click.ClickException(str(exc)) from None


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _echo_change(change) -> None:
    click.echo(
        f"{change.revision}\t{change.workspace}/{change.app}\t{change.reason}\t{change.pinned_image}"
        f"\tbuild {change.build_id}\t{change.actor}\t{change.note}"
    )


@main.command()
@click.argument("app")
@click.argument("build_id", type=int)
@click.option("--note", default=None, help="Why, for the record.")
def rollback(app: str, build_id: int, note: str | None) -> None:
    """Point APP's desired state at an earlier succeeded BUILD_ID (its image checked in the registry first)."""
    from .buildkit.registry import RegistryAuth
    from .deploy.operations import rollback as rollback_to
    from .deploy.registry import RegistryUnavailable
    from .store import ChangeRefused

    settings = get_settings()
    store = _store()
    target = _app_of(store, app)
    auth = (
        RegistryAuth(settings.registry_username, settings.registry_password.get_secret_value())
        if settings.registry_username
        else None
    )
    try:
        _echo_change(rollback_to(store, target, build_id, _actor(), auth, note=note))
    except (ChangeRefused, RegistryUnavailable) as exc:
        raise click.ClickException(f"rollback refused: {exc}") from None


@main.command()
@click.argument("app")
@click.option("--note", default=None, help="Why, for the record.")
def pin(app: str, note: str | None) -> None:
    """Hold APP on its current image; successful builds wait until unpin."""
    from .store import ChangeRefused

    store = _store()
    try:
        _echo_change(store.pin(_app_of(store, app).id, _actor(), note))
    except ChangeRefused as exc:
        raise click.ClickException(f"pin refused: {exc}") from None


@main.command()
@click.argument("app")
@click.option("--note", default=None, help="Why, for the record.")
def unpin(app: str, note: str | None) -> None:
    """Release APP's pin; it moves to the newest build held meanwhile."""
    from .store import ChangeRefused

    store = _store()
    try:
        _echo_change(store.unpin(_app_of(store, app).id, _actor(), note))
    except ChangeRefused as exc:
        raise click.ClickException(f"unpin refused: {exc}") from None


@main.command("desired-state")
@click.option("--watch", is_flag=True, help="Then print every change as it happens, until Ctrl-C.")
@click.option("--after", type=int, default=None, help="With --watch: start after this revision.")
def desired_state_command(watch: bool, after: int | None) -> None:
    """Print every app's desired state (and with --watch, the change feed)."""
    store = _store()
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
            _echo_change(change)
            position = change.revision
        if not changes:
            import time

            time.sleep(0.2)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
def gc(dry_run: bool) -> None:
    """Delete pushed images beyond STARFORGE_RETAIN_BUILDS per app, never one desired in STARFORGE_RETAIN_DESIRED_DAYS."""
    from .buildkit.registry import RegistryAuth
    from .core.retention import RetentionPolicy
    from .deploy.operations import collect_images

    settings = get_settings()
    auth = (
        RegistryAuth(settings.registry_username, settings.registry_password.get_secret_value())
        if settings.registry_username
        else None
    )
    report = collect_images(
        _store(),
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


@main.command("build-dir")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("-t", "--image", required=True, help="Image reference to push, e.g. 127.0.0.1:5000/apps/demo:dev")
@click.option("-f", "--file", "dockerfile", default=None, help="Dockerfile (path from here; default PATH/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE", help="Build-time variable (repeatable).")
@click.option("--target", default=None, help="Build this stage of a multi-stage Dockerfile.")
@click.option("--platform", default=None, help="Target platform, e.g. linux/amd64.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option(
    "--secret", "secrets", multiple=True, metavar="id=NAME,env=VAR|src=FILE", help="Build secret (repeatable)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr; only the JSON result.")
@click.option(
    "--workspace", default=None, help="Workspace (its Depot project on the depot backend); default: settings."
)
def build_dir(
    path: str,
    image: str,
    dockerfile: str | None,
    build_args: tuple[str, ...],
    target: str | None,
    platform: str | None,
    no_cache: bool,
    secrets: tuple[str, ...],
    quiet: bool,
    workspace: str | None,
) -> None:
    """Build PATH and push it like `docker build` + `docker push`; print one JSON object."""
    from .cli_build import build_dir_command

    sys.exit(
        build_dir_command(
            path,
            image,
            dockerfile=dockerfile,
            build_args=build_args,
            target=target,
            platform=platform,
            no_cache=no_cache,
            secrets=secrets,
            quiet=quiet,
            workspace=workspace,
        )
    )


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
    type=click.Choice(["auto", "buildkit", "depot", "fake"]),
    default=None,
    help="Build backend (default: STARFORGE_BUILD_BACKEND, else buildkit when dockerd is reachable).",
)
def demo(backend: str | None) -> None:
    """Carry a sample app from a signed push webhook to desired state, on embedded defaults."""
    from .demo import run_demo

    settings = get_settings()
    sys.exit(run_demo(settings.model_copy(update={"build_backend": backend}) if backend else settings))


@main.command("depot-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
@click.option("--token", default=None, help="Organization token to accept (default: a fresh random one).")
@click.option("--organization", default="org-emulator", show_default=True)
@click.option(
    "--pending", default=1, show_default=True, type=int, help="Pending messages before an endpoint is active."
)
@click.option("--pending-delay", default=0.0, show_default=True, type=float, help="Seconds between pending messages.")
@click.option(
    "--health-timeout",
    default=300.0,
    show_default=True,
    type=float,
    help="Seconds without health reports before a build expires.",
)
def depot_emulator(
    host: str,
    port: int,
    token: str | None,
    organization: str,
    pending: int,
    pending_delay: float,
    health_timeout: float,
) -> None:
    """Serve a Depot emulator in front of the local dockerd until Ctrl-C, printing each build's lifecycle."""
    import signal
    import threading

    from .buildkit.registry import RegistryAuth
    from .emulators.depot import DepotEmulator, Faults

    settings = get_settings()
    password = settings.registry_password.get_secret_value()
    auth = RegistryAuth(settings.registry_username, password) if settings.registry_username and password else None
    emulator = DepotEmulator(
        token=token,
        organization_id=organization,
        host=host,
        port=port,
        docker_addr=settings.buildkit_addr,
        registry_auth=auth,
        health_timeout_s=health_timeout,
        faults=Faults(pending_messages=pending, pending_delay_s=pending_delay),
    )
    try:
        url = emulator.start()
    except (OSError, RuntimeError, ValueError) as exc:
        raise click.ClickException(f"cannot start the Depot emulator: {exc}") from None
    click.echo(f"Depot emulator for organization {organization}, builds on {settings.buildkit_addr}")
    click.echo(
        f"  export STARFORGE_BUILD_BACKEND=depot STARFORGE_DEPOT_API_URL={url} STARFORGE_DEPOT_TOKEN={emulator.token}"
    )
    click.echo("  each project and build is printed below as it changes; Ctrl-C stops the emulator")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    seen: dict[str, str] = {}
    try:
        while not stopping.is_set():
            emulator.wait_for(lambda emu: stopping.is_set() or _depot_lines(emu) != seen, timeout=0.5)
            for key, line in _depot_lines(emulator).items():
                if seen.get(key) != line:
                    click.echo(line)
                    seen[key] = line
    finally:
        emulator.stop()


def _depot_lines(emulator: DepotEmulator) -> dict[str, str]:
    """One summary line per project and build of the emulator."""
    lines = {
        p.project_id: f"project {p.project_id} {p.name!r} region={p.region_id}{' deleted' if p.deleted else ''}"
        for p in emulator.projects()
    }
    for b in emulator.builds():
        state = b.result or ("expired" if b.expired else "running")
        images = ", ".join(f"{s.images[0] if s.images else s.ref}@{s.digest or '-'}" for s in b.solves)
        lines[b.build_id] = (
            f"build {b.build_id} project={b.project_id} {state}{': ' + b.error if b.error else ''}"
            f" health={b.health_reports} endpoint={'released' if b.released else b.endpoint or '-'}"
            f" solves=[{images}]"
        )
    return lines


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


@main.group()
def github() -> None:
    """The GitHub App: check its settings and what it reaches."""


@github.command("check")
def github_check() -> None:
    """Verify the App's settings with GitHub, list installations and reachable repositories, name what is wrong."""
    from .github_cli import run_check

    report = run_check(get_settings())
    for line in report.lines:
        click.echo(line)
    if report.problems:
        raise click.ClickException(f"{len(report.problems)} problem(s): " + "; ".join(report.problems))


@main.command()
@click.option("--postgres", is_flag=True, help="Use deploy/dagster-postgres.yaml (STARFORGE_DAGSTER_PG_URL).")
def dagster_home(postgres: bool) -> None:
    """Prepare DAGSTER_HOME under STARFORGE_HOME and print it (export it before dagster commands)."""
    from .instance import prepare_dagster_home

    click.echo(prepare_dagster_home(get_settings(), postgres=postgres))


from .cli_vars import apps_remove, apps_show, apps_update, secrets_group, vars_group  # noqa: E402

for _group, _command in ((apps, apps_update), (apps, apps_remove), (apps, apps_show), (main, vars_group)):
    _group.add_command(_command)
main.add_command(secrets_group)

if __name__ == "__main__":
    main()
