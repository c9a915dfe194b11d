"""`starforge apps …`: register, list, show, update and remove apps."""

from __future__ import annotations

import json
from typing import Any

import click

from ..settings import get_settings
from .common import actor, app_of, open_build_store, variable_view


@click.group()
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
@click.option(
    "--wait-for-checks/--no-wait-for-checks", default=False, help="Pushes wait for the commit's GitHub checks."
)
def apps_add(
    name, repo, github_repo, branch, workspace, root_dir, dockerfile, watch, repo_name, cancel_running, wait_for_checks
) -> None:
    """Register an app so pushes to its repository build it."""
    from ..core.inputs import InvalidInput, check_branch, check_repo_url, check_text

    if (repo is None) == (github_repo is None):
        raise click.ClickException("give exactly one of --repo URL and --github-repo owner/name")
    link = None
    if github_repo is not None:
        from .github import resolve_github_repo

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
        app = open_build_store().add_app(
            workspace,
            name,
            repo,
            branch,
            repo_full_name=repo_name,
            root_dir=root_dir,
            dockerfile_path=dockerfile,
            watch_paths=list(watch),
            cancel_running=cancel_running,
            wait_for_checks=wait_for_checks,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    out = app.model_dump(mode="json")
    if link is not None:
        open_build_store().github().link_app(app.id, link.repo_id, link.full_name, link.installation_id)
        out.update(github_repo_id=link.repo_id, github_installation_id=link.installation_id)
    click.echo(json.dumps(out))


@apps.command("list")
def apps_list() -> None:
    """List registered apps."""
    for app in open_build_store().list_apps():
        click.echo(f"{app.workspace}/{app.name}\t{app.repo_url}\t{app.branch}")


def _echo_app(app, **extra: Any) -> None:
    click.echo(json.dumps({**app.model_dump(mode="json"), **extra}))


@apps.command("update")
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
@click.option(
    "--wait-for-checks/--no-wait-for-checks",
    default=None,
    help="Pushes wait for the commit's GitHub check suites, and build only if they pass.",
)
@click.option("--previews/--no-previews", default=None, help="Pull requests build previews (pr-<number>).")
@click.option("--preview-label", default=None, help="A label that approves a held pull request ('' clears it).")
def apps_update(
    app,
    repo,
    branch,
    root_dir,
    dockerfile,
    watch,
    no_watch,
    target,
    build_timeout,
    cancel_running,
    auto_build,
    wait_for_checks,
    previews,
    preview_label,
) -> None:
    """Change APP's settings (only the options given)."""
    from ..core.app_settings import check_setting
    from ..core.inputs import InvalidInput
    from ..store import AppArchived

    given: dict[str, Any] = {
        "repo_url": repo,
        "branch": branch,
        "root_dir": root_dir,
        "dockerfile_path": dockerfile,
        "target": target,
        "build_timeout_s": build_timeout,
        "cancel_running": cancel_running,
        "auto_build": auto_build,
        "wait_for_checks": wait_for_checks,
        "previews": previews,
        "preview_label": preview_label,
    }
    if watch or no_watch:
        given["watch_paths"] = [] if no_watch else list(watch)
    changes: dict[str, Any] = {}
    policy = get_settings().git_policy
    try:
        for field, value in given.items():
            if value is None:
                continue
            if (field in ("dockerfile_path", "target", "preview_label") and value == "") or (
                field == "build_timeout_s" and value == 0
            ):
                changes[field] = None
            else:
                changes[field] = check_setting(field, value, policy)
    except InvalidInput as exc:
        raise click.ClickException(f"{field}: {exc}") from None
    store = open_build_store()
    found = app_of(store, app)
    try:
        _echo_app(store.update_app(found.id, changes))
    except AppArchived as exc:
        raise click.ClickException(str(exc)) from None


@apps.command("remove")
@click.argument("app")
def apps_remove(app: str) -> None:
    """Remove APP: its queued and running builds stop; builds, logs and desired state are kept."""
    store = open_build_store()
    removed, stopped = store.remove_app(app_of(store, app).id, actor())
    _echo_app(removed, stopped=[b.id for b in stopped])


@apps.command("show")
@click.argument("app")
def apps_show(app: str) -> None:
    """Print APP's settings and its variables (never a secret's value)."""
    store = open_build_store()
    found = app_of(store, app)
    variables = [variable_view(v) for v in store.variables(found.workspace, found.name)]
    _echo_app(found, variables=variables)
